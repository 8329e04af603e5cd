#include "gateway/room_fanout.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include <boost/asio/steady_timer.hpp>

#include "absl/time/clock.h"
#include "base/log.h"
#include "cluster/shard_map.h"
#include "gateway/gateway_context.h"
#include "gateway/sse_frames.h"
#include "gateway/sse_session.h"
#include "gateway/stream_catch_up.h"
#include "gateway/upstream_streams.h"

namespace roomsync {

namespace {

// How long a fan-out that never went live keeps following "moved" answers
// (a lease hand-over takes well under this) before its sessions get 503.
constexpr absl::Duration kNeverLiveRetryWindow = absl::Seconds(5);

// Subscription generations are unique across fan-outs, not only within
// one: a Watch call keys its subscriptions by room, and a room's fan-out
// that ends (its last session left) and the one that replaces it are on
// the same call. Were both subscriptions generation 1, the old fan-out's
// late unsubscribe would end the new one's, which then never goes live.
std::atomic<uint64_t> next_upstream_generation{1};

}  // namespace

struct RetryTimer {
  explicit RetryTimer(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

RoomFanout::RoomFanout(GatewayContext& context, std::string room)
    : context_(context), room_(std::move(room)) {}

RoomFanout::~RoomFanout() = default;

void RoomFanout::StartUpstream() {
  context_.metrics.UpstreamSubscriptionOpened();
  SubscribeUpstream();
}

void RoomFanout::SubscribeUpstream() {
  std::optional<v1::Checkpoint> from;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return;
    generation = generation_ = next_upstream_generation.fetch_add(1);
    if (live_) {
      // What the sessions have been sent: a new subscription continues
      // right after it (on the room's new node, after a move).
      from = head_;
      from->clear_digest();
    }
  }
  std::shared_ptr<RoomUpstream> upstream =
      context_.config.watch_upstream
          ? context_.watch_calls->Subscribe(shared_from_this(), generation, from)
          : SubscribePerRoom(context_, shared_from_this(), generation, from);
  if (upstream == nullptr) return UpstreamEnded(generation, UpstreamEnd::kLost, "");
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    // The subscription may have ended already (its first answer can come
    // before Subscribe returns): then it is not kept.
    if (ending_ || generation_ != generation || ended_generation_ == generation) {
      cancel = true;
    } else {
      upstream_ = upstream;
    }
  }
  if (cancel) upstream->Cancel();
}

void RoomFanout::UpstreamLive(uint64_t generation, const v1::Checkpoint& head) {
  Followups followups;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || generation != generation_) return;
    attempts_ = 0;
    lost_since_ = absl::InfiniteFuture();
    if (!live_) GoLive(head, followups);
  }
  RunFollowups(followups);
}

void RoomFanout::UpstreamChanges(uint64_t generation, std::shared_ptr<const v1::ChangeBatch> batch) {
  Followups followups;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || generation != generation_) return;
    if (!live_) {
      // No Live marker first: treat the batch's predecessor as the head.
      v1::Checkpoint head = batch->checkpoint();
      if (batch->documents_size() > 0) head.set_seq(batch->documents(0).seq() - 1);
      GoLive(head, followups);
    }
    Publish(std::move(batch), followups);
  }
  RunFollowups(followups);
}

void RoomFanout::UpstreamEnded(uint64_t generation, UpstreamEnd end, std::string_view owner) {
  bool was_live = false;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || generation != generation_) return;
    upstream_.reset();
    ended_generation_ = generation;
    was_live = live_;
  }
  // Sessions that were never live have nothing to continue: a node that is
  // gone answers them now (503 before their stream began, and their client
  // retries); a refusal naming the owner is followed.
  if (end == UpstreamEnd::kResync || (!was_live && end == UpstreamEnd::kLost)) {
    return End("the room's stream ended upstream");
  }
  // The node that refused the room named its owner: go there at once.
  const bool rerouted = !owner.empty() && context_.owners.Learn(ShardOf(room_), owner);
  bool give_up = false;
  {
    absl::MutexLock lock(&mu_);
    if (ending_ || generation != generation_) return;
    if (lost_since_ == absl::InfiniteFuture()) lost_since_ = absl::Now();
    // Sessions that never went live wait less than live ones, but a room
    // that moves while they open (its shard handed between nodes: a few
    // "moved" answers in a row) is followed, not failed: give up only
    // after a few attempts AND longer than a hand-over takes.
    const absl::Duration lost_for = absl::Now() - lost_since_;
    give_up = lost_for > context_.config.upstream_retry_window ||
              (!live_ && attempts_ >= 3 && lost_for > kNeverLiveRetryWindow);
    if (!give_up) ScheduleRetryLocked(generation, rerouted);
  }
  if (give_up) End("the room's node has not answered for too long");
}

void RoomFanout::ScheduleRetryLocked(uint64_t generation, bool now) {
  // 0, 50, 100, 200 ... 1000 ms: a few rounds of the gateway's lease-table
  // refresh while a crashed node's shards are taken over.
  const absl::Duration delay =
      now ? absl::ZeroDuration()
          : std::min(absl::Milliseconds(25) * (2 << std::min(attempts_, 5)), absl::Seconds(1));
  ++attempts_;
  auto timer = std::make_shared<RetryTimer>(context_.io);
  retry_timer_ = timer;
  timer->timer.expires_after(absl::ToChronoNanoseconds(delay));
  timer->timer.async_wait([weak = weak_from_this(), generation](boost::system::error_code error) {
    if (error) return;  // cancelled: the fan-out ended
    std::shared_ptr<RoomFanout> self = weak.lock();
    if (self == nullptr) return;
    {
      absl::MutexLock lock(&self->mu_);
      // Another subscription began meanwhile (every one is a new generation).
      if (self->ending_ || self->generation_ != generation) return;
    }
    self->SubscribeUpstream();
  });
}

bool RoomFanout::Attach(const std::shared_ptr<SseSession>& session) {
  Followups followups;
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return false;
    Subscriber& subscriber = subscribers_[session->id()];
    subscriber.session = session;
    subscriber.collection = session->params().collection;
    if (live_ && !Activate(subscriber, session, followups)) subscribers_.erase(session->id());
  }
  RunFollowups(followups);
  return true;
}

std::shared_ptr<RoomUpstream> RoomFanout::EndLocked(bool cancelled) {
  if (ending_) return nullptr;
  ending_ = true;
  cancelled_ = cancelled;
  if (retry_timer_ != nullptr) retry_timer_->timer.cancel();
  retry_timer_.reset();
  context_.metrics.UpstreamSubscriptionClosed();
  return std::move(upstream_);
}

void RoomFanout::Detach(uint64_t session_id) {
  std::shared_ptr<RoomUpstream> upstream;
  bool remove = false;
  {
    absl::MutexLock lock(&mu_);
    subscribers_.erase(session_id);
    // The last local subscriber left: the upstream subscription is not
    // worth its cost. A new session opens a new one.
    if (subscribers_.empty() && !ending_) {
      upstream = EndLocked(/*cancelled=*/true);
      remove = true;
    }
  }
  if (remove) context_.fanouts->Remove(room_, this);
  if (upstream != nullptr) upstream->Cancel();
}

void RoomFanout::Cancel() { End(""); }

void RoomFanout::End(std::string_view reason) {
  std::vector<std::shared_ptr<SseSession>> sessions;
  std::shared_ptr<RoomUpstream> upstream;
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return;
    upstream = EndLocked(/*cancelled=*/reason.empty());
    for (auto& [id, subscriber] : subscribers_) {
      if (auto session = subscriber.session.lock()) sessions.push_back(std::move(session));
    }
    subscribers_.clear();
  }
  context_.fanouts->Remove(room_, this);
  if (upstream != nullptr) upstream->Cancel();
  for (auto& session : sessions) {
    if (reason.empty()) {
      session->Close();
    } else {
      session->Resync(reason);
    }
  }
}

bool RoomFanout::Activate(Subscriber& subscriber, const std::shared_ptr<SseSession>& session,
                          Followups& followups) {
  session->BeginStream();
  const std::optional<v1::Checkpoint>& checkpoint = session->params().checkpoint;
  // At (or beyond) the head there is nothing to catch up: a reconnect storm
  // at the head costs no store query.
  if (!checkpoint.has_value() ||
      (checkpoint->epoch() == head_.epoch() && checkpoint->seq() >= head_.seq())) {
    subscriber.phase = Phase::kLive;
    // A client may be ahead of this gateway's upstream stream (it pulled
    // through another gateway, or from the room's new owner while this
    // stream still hangs on the old one): Publish skips what it holds.
    if (checkpoint.has_value()) subscriber.sent_through = checkpoint->seq();
    return true;
  }
  if (checkpoint->epoch() != head_.epoch()) {
    followups.resyncs.push_back(session);
    return false;
  }
  subscriber.phase = Phase::kCatchingUp;
  followups.catch_ups.push_back(session);
  return true;
}

void RoomFanout::GoLive(const v1::Checkpoint& head, Followups& followups) {
  live_ = true;
  head_ = head;
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    std::shared_ptr<SseSession> session = it->second.session.lock();
    if (session == nullptr || !Activate(it->second, session, followups)) {
      it = subscribers_.erase(it);
    } else {
      ++it;
    }
  }
}

void RoomFanout::Publish(std::shared_ptr<const v1::ChangeBatch> batch, Followups& followups) {
  head_ = batch->checkpoint();
  // One encoding per collection filter in use ("" = all collections, with
  // "_collection" spliced in); nullptr when the filter selects nothing.
  std::map<std::string, std::shared_ptr<const std::string>, std::less<>> frames;
  const size_t batch_bytes = batch->ByteSizeLong();
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    Subscriber& subscriber = it->second;
    std::shared_ptr<SseSession> session = subscriber.session.lock();
    if (session == nullptr) {
      it = subscribers_.erase(it);
      continue;
    }
    if (subscriber.phase == Phase::kCatchingUp) {
      subscriber.buffered.push_back(batch);
      subscriber.buffered_bytes += batch_bytes;
      if (subscriber.buffered_bytes > context_.config.max_sse_queue_bytes) {
        followups.resyncs.push_back(std::move(session));
        it = subscribers_.erase(it);
        continue;
      }
    } else if (subscriber.phase == Phase::kLive && subscriber.sent_through > 0) {
      // Just caught up: skip what the catch-up already sent (a frame of its
      // own, rarely needed: only batches overlapping the switch).
      if (batch->checkpoint().seq() <= subscriber.sent_through) {
        ++it;
        continue;
      }
      std::vector<const v1::Document*> documents =
          SelectDocuments(*batch, subscriber.collection, subscriber.sent_through);
      subscriber.sent_through = 0;  // later batches are all newer
      if (!documents.empty()) {
        session->Send(std::make_shared<const std::string>(
            EncodeChangeFrame(documents, batch->checkpoint(), subscriber.collection.empty())));
      }
    } else if (subscriber.phase == Phase::kLive) {
      auto [frame, inserted] = frames.try_emplace(subscriber.collection);
      if (inserted) {
        std::vector<const v1::Document*> documents =
            SelectDocuments(*batch, subscriber.collection, 0);
        if (!documents.empty()) {
          frame->second = std::make_shared<const std::string>(
              EncodeChangeFrame(documents, batch->checkpoint(), subscriber.collection.empty()));
        }
      }
      if (frame->second != nullptr) session->Send(frame->second);
    }
    ++it;
  }
}

void RoomFanout::FinishCatchUp(uint64_t session_id, int64_t sent_seq) {
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(session_id);
  if (it == subscribers_.end() || it->second.phase != Phase::kCatchingUp) return;
  Subscriber& subscriber = it->second;
  std::shared_ptr<SseSession> session = subscriber.session.lock();
  if (session == nullptr) {
    subscribers_.erase(it);
    return;
  }
  // Batches buffered during the catch-up may overlap what the pull already
  // sent; only documents above `sent_seq` go out (no duplicate), and every
  // later batch reaches the session live (no gap): both under mu_.
  for (const auto& batch : subscriber.buffered) {
    std::vector<const v1::Document*> documents =
        SelectDocuments(*batch, subscriber.collection, sent_seq);
    if (documents.empty()) continue;
    session->Send(std::make_shared<const std::string>(
        EncodeChangeFrame(documents, batch->checkpoint(), subscriber.collection.empty())));
  }
  subscriber.buffered.clear();
  subscriber.buffered.shrink_to_fit();
  subscriber.buffered_bytes = 0;
  subscriber.phase = Phase::kLive;
  // Batches still on their way from upstream may hold documents the pull
  // already sent (it read the store, which can be ahead of the stream):
  // Publish drops those.
  subscriber.sent_through = sent_seq;
}

void RoomFanout::RunFollowups(Followups& followups) {
  for (auto& session : followups.resyncs) {
    session->Resync("the checkpoint is of another epoch of the room");
  }
  for (auto& session : followups.catch_ups) {
    StartStreamCatchUp(context_, shared_from_this(), std::move(session));
  }
}

RoomFanouts::RoomFanouts(GatewayContext& context) : context_(context) {}

void RoomFanouts::Attach(const std::shared_ptr<SseSession>& session) {
  if (context_.draining.load()) return session->Resync("the gateway is draining");
  std::shared_ptr<RoomFanout> opened;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<RoomFanout>& fanout = rooms_[session->params().room];
    if (fanout == nullptr || !fanout->Attach(session)) {
      fanout = std::make_shared<RoomFanout>(context_, session->params().room);
      fanout->Attach(session);
      opened = fanout;
    }
  }
  if (opened != nullptr) opened->StartUpstream();
}

void RoomFanouts::Detach(const std::string& room, uint64_t session_id) {
  std::shared_ptr<RoomFanout> fanout;
  {
    absl::MutexLock lock(&mu_);
    auto it = rooms_.find(room);
    if (it == rooms_.end()) return;
    fanout = it->second;
  }
  fanout->Detach(session_id);
}

void RoomFanouts::Remove(const std::string& room, const RoomFanout* fanout) {
  absl::MutexLock lock(&mu_);
  auto it = rooms_.find(room);
  if (it != rooms_.end() && it->second.get() == fanout) rooms_.erase(it);
}

void RoomFanouts::CancelAll() {
  std::map<std::string, std::shared_ptr<RoomFanout>> rooms;
  {
    absl::MutexLock lock(&mu_);
    rooms.swap(rooms_);
  }
  for (auto& [room, fanout] : rooms) fanout->Cancel();
}

}  // namespace roomsync

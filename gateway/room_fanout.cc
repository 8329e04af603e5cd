#include "gateway/room_fanout.h"

#include <utility>

#include "base/log.h"
#include "gateway/gateway_context.h"
#include "gateway/sse_frames.h"
#include "gateway/sse_session.h"
#include "gateway/stream_catch_up.h"

namespace roomsync {

RoomFanout::RoomFanout(GatewayContext& context, std::string room)
    : context_(context), room_(std::move(room)) {}

RoomFanout::~RoomFanout() = default;

void RoomFanout::StartUpstream() {
  self_ = shared_from_this();
  request_.set_room(room_);
  // One stream for many clients: it carries the gateway's own token, if it
  // has one (else the room service trusts the gateway's certificate).
  absl::StatusOr<std::string> token = context_.ReadUpstreamToken();
  if (token.ok()) {
    GatewayContext::ForwardToken(client_context_, *token);
  } else {
    Log(LogLevel::kWarning, "upstream_token_unreadable",
        {{"detail", std::string(token.status().message())}});
  }
  context_.grpc_calls_in_flight.fetch_add(1);
  context_.metrics.UpstreamSubscriptionOpened();
  context_.StubFor(room_).async()->Subscribe(&client_context_, &request_, this);
  StartRead(&event_);
  StartCall();
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
    cancel = cancelled_;
  }
  if (cancel) client_context_.TryCancel();
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

void RoomFanout::Detach(uint64_t session_id) {
  bool remove = false;
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    subscribers_.erase(session_id);
    // The last local subscriber left: the upstream stream is not worth its
    // cost. A new session opens a new one.
    if (subscribers_.empty() && !ending_) {
      ending_ = true;
      cancelled_ = true;
      remove = true;
      cancel = started_;  // else StartUpstream cancels right after StartCall
    }
  }
  if (remove) context_.fanouts->Remove(room_, this);
  if (cancel) client_context_.TryCancel();
}

void RoomFanout::Cancel() {
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    ending_ = true;
    cancelled_ = true;
    cancel = started_;
  }
  if (cancel) client_context_.TryCancel();
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

void RoomFanout::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  Followups followups;
  bool resync = false;
  {
    absl::MutexLock lock(&mu_);
    switch (event_.event_case()) {
      case v1::SubscribeEvent::kLive:
        if (!live_) GoLive(event_.live().checkpoint(), followups);
        break;
      case v1::SubscribeEvent::kChanges: {
        auto batch = std::make_shared<v1::ChangeBatch>(std::move(*event_.mutable_changes()));
        if (!live_) {
          // No Live marker first: treat the batch's predecessor as the head.
          v1::Checkpoint head = batch->checkpoint();
          if (batch->documents_size() > 0) head.set_seq(batch->documents(0).seq() - 1);
          GoLive(head, followups);
        }
        Publish(std::move(batch), followups);
        break;
      }
      case v1::SubscribeEvent::kResync:
        resync = true;
        break;
      default:
        break;
    }
  }
  RunFollowups(followups);
  if (resync) {
    // Every session must resync; OnDone tells them once the stream ends.
    client_context_.TryCancel();
    return;
  }
  StartRead(&event_);
}

void RoomFanout::OnDone(const grpc::Status& status) {
  std::vector<std::shared_ptr<SseSession>> sessions;
  bool cancelled = false;
  {
    absl::MutexLock lock(&mu_);
    ending_ = true;
    cancelled = cancelled_;
    for (auto& [id, subscriber] : subscribers_) {
      if (auto session = subscriber.session.lock()) sessions.push_back(std::move(session));
    }
    subscribers_.clear();
  }
  context_.fanouts->Remove(room_, this);
  // The room's shard moved: the sessions' reconnects go to its owner.
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    context_.LearnOwner(room_, client_context_);
  }
  if (!cancelled) {
    Log(LogLevel::kWarning, "upstream_subscription_ended",
        {{"room", room_}, {"grpc_code", static_cast<int>(status.error_code())}});
  }
  for (auto& session : sessions) {
    if (cancelled) {
      session->Close();
    } else {
      session->Resync("the room's stream ended upstream");
    }
  }
  context_.metrics.UpstreamSubscriptionClosed();
  context_.grpc_calls_in_flight.fetch_sub(1);
  std::shared_ptr<RoomFanout> last_reference = std::move(self_);  // may delete this
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

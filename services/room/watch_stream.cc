#include "services/room/watch_stream.h"

#include <deque>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "protocol/error_codes.h"
#include "roomsync/v1/roomsync.pb.h"
#include "services/room/change_subscriber.h"
#include "services/room/committed_batch.h"
#include "services/room/request_validation.h"
#include "services/room/room.h"

namespace roomsync {
namespace {

using Event = std::shared_ptr<const v1::WatchEvent>;
using Reactor = grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>;

class WatchedRoom;

// To a gateway that reads batched events, the events queued behind the one
// about to be written go in the same message: a node re-subscribing a
// gateway's rooms answers thousands of Live events at once, and one write
// each made the call's write loop the bottleneck. Each batched event is
// copied into the batch (events are shared between calls), so only small
// ones are batched; a larger change batch is written alone, as before.
constexpr size_t kMaxBatchedEvents = 512;
constexpr size_t kMaxBatchedEventBytes = 1024;

// Whether the peer announced `feature` in its initial metadata
// (protocol/error_codes.h kWatchFeaturesMetadataKey; a comma-separated list).
bool PeerAnnounced(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                   std::string_view feature) {
  const grpc::string_ref key(kWatchFeaturesMetadataKey.data(), kWatchFeaturesMetadataKey.size());
  for (auto [it, end] = metadata.equal_range(key); it != end; ++it) {
    if (AnnouncesFeature(std::string_view(it->second.data(), it->second.size()), feature)) return true;
  }
  return false;
}

struct QueuedEvent {
  Event event;
  // The subscription whose bound the event counts against (null for the
  // small events that end one: they always fit).
  std::shared_ptr<WatchedRoom> from;
  size_t bytes = 0;
};

template <typename Fill>
Event MakeEvent(const std::string& room, Fill fill) {
  auto event = std::make_shared<v1::WatchEvent>();
  event->set_room(room);
  fill(*event);
  return event;
}

Event Resync(const std::string& room, std::string_view reason) {
  return MakeEvent(room, [&](v1::WatchEvent& e) { e.mutable_resync()->set_reason(std::string(reason)); });
}

Event Moved(const std::string& room, std::string owner) {
  return MakeEvent(room, [&](v1::WatchEvent& e) { e.mutable_moved()->set_owner(std::move(owner)); });
}

// What the call's reactor and its rooms' subscribers share; outlives the
// reactor while a room still holds a subscriber (after Detach it only
// says "gone"). Everything here and in WatchedRoom is guarded by mu.
class WatchQueue {
 public:
  WatchQueue(const WatchLimits& limits, bool peer_reads_batches)
      : limits(limits), peer_reads_batches(peer_reads_batches) {}

  void PushLocked(Event event, std::shared_ptr<WatchedRoom> from, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // gRPC never runs a reaction inline from StartWrite/Finish, so calling
  // them under mu cannot re-enter it.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void WriteDone(bool ok);
  void Cancel();
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  const WatchLimits limits;
  const bool peer_reads_batches;
  absl::Mutex mu;
  Reactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  // The first writing_count events are being written (one, or a batch).
  std::deque<QueuedEvent> queue ABSL_GUARDED_BY(mu);
  size_t writing_count ABSL_GUARDED_BY(mu) = 0;
  v1::WatchEvent batch ABSL_GUARDED_BY(mu);  // the batch being written
  size_t queued_bytes ABSL_GUARDED_BY(mu) = 0;
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool closing ABSL_GUARDED_BY(mu) = false;  // finish once the queue is out
  bool finished ABSL_GUARDED_BY(mu) = false;
  // The call's current subscriptions by room.
  absl::flat_hash_map<std::string, std::shared_ptr<WatchedRoom>> rooms ABSL_GUARDED_BY(mu);
};

// One room's subscription on the call: the room calls these under its own
// lock, in commit order; they only queue.
class WatchedRoom final : public ChangeSubscriber,
                          public std::enable_shared_from_this<WatchedRoom> {
 public:
  WatchedRoom(std::string name, std::shared_ptr<Room> room, std::shared_ptr<WatchQueue> queue)
      : name_(std::move(name)), room_(std::move(room)), queue_(std::move(queue)) {}

  const std::string& collection() const override {
    static const std::string* const every = new std::string();
    return *every;
  }
  const std::shared_ptr<Room>& room() const { return room_; }

  bool OnChanges(const std::shared_ptr<const CommittedBatch>& batch) override {
    // Built once per batch and shared by every Watch call carrying the room.
    Event event = batch->WatchEventFor(name_);
    absl::MutexLock lock(&queue_->mu);
    if (ended_) return false;
    if (event == nullptr) return true;
    const size_t bytes = event->ByteSizeLong();
    if (queued_ >= queue_->limits.max_room_queue ||
        queue_->queued_bytes + bytes > queue_->limits.send_window_bytes) {
      EndLocked(Resync(name_, "subscriber too slow"));
      return false;
    }
    ++queued_;
    queue_->PushLocked(std::move(event), shared_from_this(), bytes);
    return true;
  }

  void OnLive(const RoomHead& head) override {
    Event event = MakeEvent(name_, [&](v1::WatchEvent& e) {
      v1::Checkpoint* checkpoint = e.mutable_live()->mutable_checkpoint();
      checkpoint->set_seq(head.last_seq);
      checkpoint->set_epoch(head.epoch);
      checkpoint->set_compacted(head.compacted_through);
    });
    absl::MutexLock lock(&queue_->mu);
    // Ended before the room registered it (an unsubscribe overtook the
    // subscribe): the room drops it at its next commit (OnChanges false).
    if (ended_) return;
    queue_->PushLocked(std::move(event), nullptr, 0);
  }

  void OnResync(std::string_view reason) override {
    absl::MutexLock lock(&queue_->mu);
    // A shard that left this node is not a gap: the gateway continues on
    // the new owner from its last checkpoint.
    EndLocked(reason == kRoomMovedReason ? Moved(name_, "") : Resync(name_, reason));
  }

  // The node is draining: its rooms are about to be served elsewhere.
  void OnClose() override {
    absl::MutexLock lock(&queue_->mu);
    EndLocked(Moved(name_, ""));
  }

  // Replaced or unsubscribed: no event of this subscription follows.
  void EndSilentlyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_->mu) { ended_ = true; }
  void Written() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_->mu) { --queued_; }

 private:
  void EndLocked(Event last) ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_->mu) {
    if (ended_) return;
    ended_ = true;
    auto it = queue_->rooms.find(name_);
    if (it != queue_->rooms.end() && it->second.get() == this) queue_->rooms.erase(it);
    if (!queue_->closing) queue_->PushLocked(std::move(last), nullptr, 0);
  }

  const std::string name_;
  const std::shared_ptr<Room> room_;
  const std::shared_ptr<WatchQueue> queue_;
  bool ended_ = false;  // guarded by queue_->mu
  size_t queued_ = 0;   // guarded by queue_->mu
};

void WatchQueue::PushLocked(Event event, std::shared_ptr<WatchedRoom> from, size_t bytes) {
  if (finished || reactor == nullptr) return;
  queued_bytes += bytes;
  queue.push_back(QueuedEvent{std::move(event), std::move(from), bytes});
  WriteNextLocked();
}

void WatchQueue::WriteNextLocked() {
  if (writing || finished || reactor == nullptr) return;
  if (!queue.empty()) {
    writing = true;
    writing_count = 1;
    const v1::WatchEvent* next = queue.front().event.get();
    if (peer_reads_batches && queue.size() > 1 && queue[0].bytes <= kMaxBatchedEventBytes &&
        queue[1].bytes <= kMaxBatchedEventBytes) {
      // Clear keeps the repeated field's allocated events for reuse.
      batch.Clear();
      v1::WatchEventBatch* events = batch.mutable_batch();
      size_t count = 0;
      for (const QueuedEvent& queued : queue) {
        if (count == kMaxBatchedEvents || queued.bytes > kMaxBatchedEventBytes) break;
        *events->add_events() = *queued.event;
        ++count;
      }
      writing_count = count;
      next = &batch;
    }
    reactor->StartWrite(next);
  } else if (closing) {
    finished = true;
    reactor->Finish(grpc::Status::OK);
  }
}

void WatchQueue::WriteDone(bool ok) {
  absl::MutexLock lock(&mu);
  writing = false;
  for (; writing_count > 0 && !queue.empty(); --writing_count) {
    QueuedEvent& written = queue.front();
    queued_bytes -= written.bytes;
    if (written.from != nullptr) written.from->Written();
    queue.pop_front();
  }
  writing_count = 0;
  if (!ok) {  // the gateway is gone; OnCancel/OnDone follow
    closing = true;
    ClearLocked();
  }
  WriteNextLocked();
}

void WatchQueue::Cancel() {
  absl::MutexLock lock(&mu);
  closing = true;
  ClearLocked();
  if (!writing && !finished && reactor != nullptr) {
    finished = true;
    reactor->Finish(grpc::Status::CANCELLED);
  }
}

void WatchQueue::ClearLocked() {
  // The events in flight stay until their write completes.
  while (queue.size() > (writing ? writing_count : 0)) {
    queued_bytes -= queue.back().bytes;
    queue.pop_back();
  }
}

class WatchReactor final : public Reactor {
 public:
  WatchReactor(grpc::CallbackServerContext* context, WatchAdmission admit,
               WatchRoomLookup rooms, WatchPost post, const WatchLimits& limits)
      : context_(context),
        admit_(std::move(admit)),
        rooms_(std::move(rooms)),
        post_(std::move(post)),
        queue_(std::make_shared<WatchQueue>(
            limits, PeerAnnounced(context->client_metadata(), kWatchBatchFeature))) {
    {
      absl::MutexLock lock(&queue_->mu);
      queue_->reactor = this;
    }
    // This node reads batched requests: say so before anything else.
    context_->AddInitialMetadata(std::string(kWatchFeaturesMetadataKey),
                                 std::string(kWatchBatchFeature));
    StartSendInitialMetadata();
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The gateway closed its side: end once what is queued is out.
      EndAll(/*finish=*/true);
      return;
    }
    if (request_.has_batch()) {
      // The batch's subscriptions start in one executor task, not one
      // each: a gateway re-subscribing its rooms sends thousands at once.
      std::vector<PendingSubscribe> batch;
      for (const v1::WatchRequest& request : request_.batch().requests()) Apply(request, &batch);
      if (!batch.empty()) {
        post_([batch = std::move(batch)]() mutable {
          for (PendingSubscribe& s : batch) s.watched->room()->SubscribeNow(s.watched, std::move(s.from));
        });
      }
    } else {
      Apply(request_);
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override { queue_->WriteDone(ok); }

  void OnCancel() override {
    EndAll(/*finish=*/false);
    queue_->Cancel();
  }

  void OnDone() override {
    EndAll(/*finish=*/false);
    {
      absl::MutexLock lock(&queue_->mu);
      queue_->reactor = nullptr;
      queue_->queue.clear();  // breaks the queue <-> room references
      queue_->queued_bytes = 0;
    }
    delete this;
  }

 private:
  struct PendingSubscribe {
    std::shared_ptr<WatchedRoom> watched;
    std::optional<ClientCheckpoint> from;
  };

  // `batch`: where a subscription goes to be started with the rest of its
  // batch; null: it starts on its own (Room::Subscribe).
  void Apply(const v1::WatchRequest& request, std::vector<PendingSubscribe>* batch = nullptr) {
    switch (request.request_case()) {
      case v1::WatchRequest::kSubscribe:
        Subscribe(request.subscribe(), batch);
        break;
      case v1::WatchRequest::kUnsubscribe:
        Unsubscribe(request.unsubscribe().room());
        break;
      default:  // a request this version does not know, or a nested batch: ignored
        break;
    }
  }

  void Subscribe(const v1::WatchSubscribe& request, std::vector<PendingSubscribe>* batch) {
    const std::string& name = request.room();
    std::string owner;
    absl::Status admitted = admit_(*context_, name, &owner);
    absl::StatusOr<std::optional<ClientCheckpoint>> from =
        ReadCheckpoint(request.has_checkpoint(), request.checkpoint(), "checkpoint");
    if (admitted.ok() && !from.ok()) admitted = from.status();
    // Looked up before taking the queue's lock: the registry's lock comes
    // before a room's, and a room's before the queue's (OnChanges).
    std::shared_ptr<Room> room = admitted.ok() ? rooms_(name) : nullptr;
    std::shared_ptr<WatchedRoom> replaced;
    std::shared_ptr<WatchedRoom> watched;
    {
      absl::MutexLock lock(&queue_->mu);
      if (queue_->closing) return;
      if (auto it = queue_->rooms.find(name); it != queue_->rooms.end()) {
        replaced = std::move(it->second);
        replaced->EndSilentlyLocked();
        queue_->rooms.erase(it);
      }
      if (admitted.code() == absl::StatusCode::kFailedPrecondition ||
          admitted.code() == absl::StatusCode::kUnavailable) {
        queue_->PushLocked(Moved(name, std::move(owner)), nullptr, 0);
      } else if (!admitted.ok()) {
        queue_->PushLocked(Refused(name, admitted), nullptr, 0);
      } else if (queue_->rooms.size() >= queue_->limits.max_rooms) {
        queue_->PushLocked(
            Refused(name, absl::ResourceExhaustedError("too many rooms on one Watch call")), nullptr, 0);
      } else {
        watched = std::make_shared<WatchedRoom>(name, std::move(room), queue_);
        queue_->rooms.emplace(name, watched);
      }
    }
    if (replaced != nullptr) replaced->room()->Unsubscribe(replaced.get());
    if (watched == nullptr) return;
    // As Subscribe: an explicit checkpoint {seq: 0} still means "from the
    // beginning", unlike none (live only).
    std::optional<ClientCheckpoint> start = *from;
    if (!start.has_value() && request.has_checkpoint()) start = ClientCheckpoint{};
    if (batch != nullptr) {
      batch->push_back(PendingSubscribe{std::move(watched), std::move(start)});
    } else {
      watched->room()->Subscribe(watched, std::move(start));
    }
  }

  void Unsubscribe(const std::string& name) {
    std::shared_ptr<WatchedRoom> ended;
    {
      absl::MutexLock lock(&queue_->mu);
      if (queue_->closing) return;
      if (auto it = queue_->rooms.find(name); it != queue_->rooms.end()) {
        ended = std::move(it->second);
        ended->EndSilentlyLocked();
        queue_->rooms.erase(it);
      }
      // After every event of the ended subscription (FIFO, and it queues
      // nothing once ended).
      queue_->PushLocked(
          MakeEvent(name, [](v1::WatchEvent& e) { e.mutable_unsubscribed(); }), nullptr, 0);
    }
    if (ended != nullptr) ended->room()->Unsubscribe(ended.get());
  }

  // Ends every subscription; `finish`: then the call, once its queue is out.
  void EndAll(bool finish) {
    std::vector<std::shared_ptr<WatchedRoom>> ended;
    {
      absl::MutexLock lock(&queue_->mu);
      ended.reserve(queue_->rooms.size());
      for (auto& [name, watched] : queue_->rooms) {
        watched->EndSilentlyLocked();
        ended.push_back(std::move(watched));
      }
      queue_->rooms.clear();
      if (finish && !queue_->closing) {
        queue_->closing = true;
        queue_->WriteNextLocked();
      }
    }
    for (const auto& watched : ended) watched->room()->Unsubscribe(watched.get());
  }

  static Event Refused(const std::string& room, const absl::Status& status) {
    return MakeEvent(room, [&](v1::WatchEvent& e) {
      e.mutable_refused()->set_code(static_cast<int>(status.code()));
      e.mutable_refused()->set_message(std::string(status.message()));
    });
  }

  grpc::CallbackServerContext* const context_;
  const WatchAdmission admit_;
  const WatchRoomLookup rooms_;
  const WatchPost post_;
  const std::shared_ptr<WatchQueue> queue_;
  v1::WatchRequest request_;  // the read in flight writes here
};

}  // namespace

Reactor* StartWatchStream(grpc::CallbackServerContext* context, WatchAdmission admit,
                          WatchRoomLookup rooms, WatchPost post, WatchLimits limits) {
  return new WatchReactor(context, std::move(admit), std::move(rooms), std::move(post), limits);
}

}  // namespace roomsync

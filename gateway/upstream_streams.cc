#include "gateway/upstream_streams.h"

#include <deque>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "base/log.h"
#include "gateway/gateway_context.h"
#include "gateway/room_fanout.h"
#include "protocol/error_codes.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {
namespace {

using UpstreamEnd = RoomFanout::UpstreamEnd;

// Requests per batched Watch write: 1,024 subscribes of ~60 bytes each.
constexpr size_t kMaxBatchedRequests = 1024;

// Both kinds of call carry the gateway's own token, if it has one (else
// the room service trusts the gateway's certificate): one call serves
// many clients.
void AddUpstreamToken(GatewayContext& context, grpc::ClientContext& client_context) {
  absl::StatusOr<std::string> token = context.ReadUpstreamToken();
  if (token.ok()) {
    GatewayContext::ForwardToken(client_context, *token);
  } else {
    Log(LogLevel::kWarning, "upstream_token_unreadable",
        {{"detail", std::string(token.status().message())}});
  }
}

std::string OwnerNamedIn(const grpc::ClientContext& refused) {
  const auto& trailers = refused.GetServerTrailingMetadata();
  auto it = trailers.find(std::string(kOwnerMetadataKey));
  return it == trailers.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

// How a call's end reads for the rooms it carried: the node refusing the
// room or going away is not a gap (the room continues elsewhere from its
// checkpoint); anything else is.
UpstreamEnd EndOf(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:  // the node drained its subscribers
    case grpc::StatusCode::FAILED_PRECONDITION:
      return UpstreamEnd::kMoved;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return UpstreamEnd::kLost;
    default:
      return UpstreamEnd::kResync;
  }
}

// --- Per-room Subscribe -------------------------------------------------

class SubscribeCall final : public grpc::ClientReadReactor<v1::SubscribeEvent>,
                            public RoomUpstream,
                            public std::enable_shared_from_this<SubscribeCall> {
 public:
  SubscribeCall(GatewayContext& context, std::shared_ptr<RoomFanout> fanout, uint64_t generation)
      : context_(context), fanout_(std::move(fanout)), generation_(generation) {}

  void Start(const std::optional<v1::Checkpoint>& from) {
    self_ = shared_from_this();
    request_.set_room(fanout_->room());
    if (from.has_value()) *request_.mutable_checkpoint() = *from;
    AddUpstreamToken(context_, client_context_);
    context_.grpc_calls_in_flight.fetch_add(1);
    context_.metrics.UpstreamStreamOpened();
    context_.StubFor(fanout_->room()).async()->Subscribe(&client_context_, &request_, this);
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

  void Cancel() override {
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      cancel = started_;  // else Start cancels right after StartCall
    }
    if (cancel) client_context_.TryCancel();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    switch (event_.event_case()) {
      case v1::SubscribeEvent::kLive:
        fanout_->UpstreamLive(generation_, event_.live().checkpoint());
        break;
      case v1::SubscribeEvent::kChanges:
        fanout_->UpstreamChanges(generation_,
            std::make_shared<const v1::ChangeBatch>(std::move(*event_.mutable_changes())));
        break;
      case v1::SubscribeEvent::kResync: {
        absl::MutexLock lock(&mu_);
        resynced_ = true;
      }
        client_context_.TryCancel();  // OnDone tells the fan-out
        return;
      default:
        break;
    }
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    bool report = false;
    UpstreamEnd end = UpstreamEnd::kResync;
    {
      absl::MutexLock lock(&mu_);
      report = !cancelled_;
      if (!resynced_) end = EndOf(status);
    }
    if (report) {
      if (end != UpstreamEnd::kMoved) {
        Log(LogLevel::kWarning, "upstream_subscription_ended",
            {{"room", fanout_->room()}, {"grpc_code", static_cast<int>(status.error_code())}});
      }
      fanout_->UpstreamEnded(generation_, end, OwnerNamedIn(client_context_));
    }
    context_.metrics.UpstreamStreamClosed();
    context_.grpc_calls_in_flight.fetch_sub(1);
    std::shared_ptr<SubscribeCall> last_reference = std::move(self_);  // may delete this
  }

 private:
  GatewayContext& context_;
  const std::shared_ptr<RoomFanout> fanout_;
  const uint64_t generation_;
  grpc::ClientContext client_context_;
  v1::SubscribeRequest request_;
  v1::SubscribeEvent event_;  // the read in flight writes here
  std::shared_ptr<SubscribeCall> self_;  // until OnDone, gRPC's last reaction
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool resynced_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

// --- Watch ----------------------------------------------------------------

// One Watch call to one room node, carrying every room of that node that
// has a fan-out here.
class WatchCall final : public grpc::ClientBidiReactor<v1::WatchRequest, v1::WatchEvent>,
                        public std::enable_shared_from_this<WatchCall> {
 public:
  WatchCall(GatewayContext& context, WatchCalls& calls, int node)
      : context_(context), calls_(calls), node_(node) {}

  // Holding no lock: gRPC may run reactions on the calling thread.
  void Start() {
    self_ = shared_from_this();
    AddUpstreamToken(context_, client_context_);
    context_.grpc_calls_in_flight.fetch_add(1);
    context_.metrics.UpstreamStreamOpened();
    // This gateway reads batched events (roomsync.proto, WatchRequest).
    client_context_.AddMetadata(std::string(kWatchFeaturesMetadataKey),
                                std::string(kWatchBatchFeature));
    context_.room_nodes.at(node_).stub->async()->Watch(&client_context_, this);
    // Subscribes and unsubscribes start writes from outside gRPC's
    // reactions. Without a hold, a call that ends (a node that refuses the
    // connection ends it at once) could be freed by gRPC between the check
    // that it has not ended and the StartWrite. Released once it has ended
    // and no such write is being started (ReleaseHoldLocked).
    AddHold();
    StartRead(&event_);
    StartCall();
    const v1::WatchRequest* first = nullptr;
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
      first = NextOutsideWriteLocked();
    }
    StartOutsideWrite(first);
  }

  // False when the call has ended (the caller opens another).
  bool Subscribe(const std::shared_ptr<RoomFanout>& fanout, uint64_t generation,
                 const std::optional<v1::Checkpoint>& from) {
    const v1::WatchRequest* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return false;
      Watched& watched = rooms_[fanout->room()];
      // A subscription still running on the call is ended first, so that
      // none of its events is taken for the new one's.
      if (watched.active) QueueUnsubscribeLocked(fanout->room(), watched);
      watched.fanout = fanout;
      watched.generation = generation;
      watched.active = true;
      v1::WatchSubscribe* subscribe = outgoing_.emplace_back().mutable_subscribe();
      subscribe->set_room(fanout->room());
      if (from.has_value()) *subscribe->mutable_checkpoint() = *from;
      next = NextOutsideWriteLocked();
    }
    StartOutsideWrite(next);
    return true;
  }

  void Unsubscribe(const std::string& room, uint64_t generation) {
    const v1::WatchRequest* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      auto it = rooms_.find(room);
      if (it == rooms_.end() || !it->second.active || it->second.generation != generation) return;
      QueueUnsubscribeLocked(room, it->second);
      next = NextOutsideWriteLocked();
    }
    StartOutsideWrite(next);
  }

  void Cancel() { client_context_.TryCancel(); }

  // A node that reads batched requests says so in its initial metadata;
  // until then (and with an older node, always) one request per message.
  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    const grpc::string_ref key(kWatchFeaturesMetadataKey.data(), kWatchFeaturesMetadataKey.size());
    const auto& metadata = client_context_.GetServerInitialMetadata();
    for (auto [it, end] = metadata.equal_range(key); it != end; ++it) {
      if (AnnouncesFeature(std::string_view(it->second.data(), it->second.size()),
                           kWatchBatchFeature)) {
        absl::MutexLock lock(&mu_);
        node_reads_batches_ = true;
      }
    }
  }

  void OnWriteDone(bool ok) override {
    const v1::WatchRequest* next = nullptr;
    bool close = false;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {  // the call is broken: the read fails too, then OnDone
        ended_ = true;
        outgoing_.clear();
        release = ReleaseHoldLocked();
      } else {
        next = NextWriteLocked();
        // The node may have answered the last request before its write
        // completed here.
        close = next == nullptr && CloseIfEmptyLocked();
        release = close && ReleaseHoldLocked();
      }
    }
    if (close) Close();
    if (next != nullptr) StartWrite(next);
    if (release) RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the call ended: no read nor write starts on it again
      bool release = false;
      {
        absl::MutexLock lock(&mu_);
        ended_ = true;
        release = ReleaseHoldLocked();
      }
      if (release) RemoveHold();  // then OnDone
      return;
    }
    if (event_.has_batch()) {
      for (v1::WatchEvent& event : *event_.mutable_batch()->mutable_events()) Dispatch(event);
    } else {
      Dispatch(event_);
    }
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    std::vector<std::pair<std::shared_ptr<RoomFanout>, uint64_t>> carried;
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      for (auto& [room, watched] : rooms_) {
        if (!watched.active) continue;
        if (auto fanout = watched.fanout.lock()) carried.emplace_back(std::move(fanout), watched.generation);
      }
      rooms_.clear();
      outgoing_.clear();
    }
    calls_.Remove(node_, this);
    if (status.error_code() != grpc::StatusCode::CANCELLED || !carried.empty()) {
      Log(LogLevel::kInfo, "upstream_watch_ended",
          {{"node", context_.room_nodes.at(node_).address},
           {"grpc_code", static_cast<int>(status.error_code())},
           {"rooms", static_cast<int64_t>(carried.size())}});
    }
    // Every room goes on elsewhere (or here again) from its checkpoint.
    const UpstreamEnd end = EndOf(status) == UpstreamEnd::kResync ? UpstreamEnd::kResync
                                                                    : UpstreamEnd::kLost;
    for (auto& [fanout, generation] : carried) fanout->UpstreamEnded(generation, end, "");
    context_.metrics.UpstreamStreamClosed();
    context_.grpc_calls_in_flight.fetch_sub(1);
    std::shared_ptr<WatchCall> last_reference = std::move(self_);  // may delete this
  }

 private:
  struct Watched {
    std::weak_ptr<RoomFanout> fanout;
    uint64_t generation = 0;
    // The node may still be serving the subscription (no terminal event
    // yet, no unsubscribe sent).
    bool active = false;
    // Unsubscribes sent and not yet answered: events until the last
    // answer belong to ended subscriptions.
    int unanswered = 0;
  };

  void QueueUnsubscribeLocked(const std::string& room, Watched& watched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    watched.active = false;
    watched.fanout.reset();
    ++watched.unanswered;
    outgoing_.emplace_back().mutable_unsubscribe()->set_room(room);
  }

  // The request to write now, if one may start: the oldest queued one, or
  // every queued one (up to kMaxBatchedRequests) in one batch when the node
  // reads batches, so that subscribing thousands of rooms (a gateway
  // restart, a node that came back) is not one write each. The caller
  // starts it after releasing mu_ (a reaction may run inline).
  const v1::WatchRequest* NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_ || writing_ || ended_ || outgoing_.empty()) return nullptr;
    writing_ = true;
    if (!node_reads_batches_ || outgoing_.size() == 1) {
      in_flight_ = std::move(outgoing_.front());
      outgoing_.pop_front();
      return &in_flight_;
    }
    in_flight_.Clear();
    v1::WatchRequestBatch* batch = in_flight_.mutable_batch();
    for (size_t n = 0; n < kMaxBatchedRequests && !outgoing_.empty(); ++n) {
      batch->add_requests()->Swap(&outgoing_.front());
      outgoing_.pop_front();
    }
    return &in_flight_;
  }

  // NextWriteLocked for a caller outside gRPC's reactions: the hold stays
  // until StartOutsideWrite has started it.
  const v1::WatchRequest* NextOutsideWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const v1::WatchRequest* next = NextWriteLocked();
    if (next != nullptr) ++outside_writes_starting_;
    return next;
  }

  void StartOutsideWrite(const v1::WatchRequest* next) ABSL_LOCKS_EXCLUDED(mu_) {
    if (next == nullptr) return;
    StartWrite(next);
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      --outside_writes_starting_;
      release = ReleaseHoldLocked();
    }
    if (release) RemoveHold();
  }

  // True once, when the call has ended and no write is being started from
  // outside a reaction: the caller then removes the hold (after mu_).
  bool ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!holding_ || !ended_ || outside_writes_starting_ > 0) return false;
    holding_ = false;
    return true;
  }

  // The call carries no room any more: it ends (a room node that drained
  // or lost its shards keeps no idle call open); the next room opens
  // another. Under mu_, so that no subscribe lands on it meanwhile.
  bool CloseIfEmptyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ended_ || writing_ || !rooms_.empty() || !outgoing_.empty()) return false;
    ended_ = true;
    return true;
  }

  void Close() {
    calls_.Remove(node_, this);
    client_context_.TryCancel();
  }

  void Dispatch(v1::WatchEvent& event) {
    std::shared_ptr<RoomFanout> fanout;
    uint64_t generation = 0;
    bool close = false;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = rooms_.find(event.room());
      if (it == rooms_.end()) return;
      Watched& watched = it->second;
      if (event.has_unsubscribed()) {
        if (watched.unanswered > 0) --watched.unanswered;
        if (watched.unanswered == 0 && !watched.active) rooms_.erase(it);
        close = CloseIfEmptyLocked();
      } else if (watched.unanswered == 0 && watched.active) {
        fanout = watched.fanout.lock();
        generation = watched.generation;
        if (!event.has_changes() && !event.has_live()) {
          // resync, moved, refused: the node ended the subscription.
          rooms_.erase(it);
          close = CloseIfEmptyLocked();
        }
      }
      release = close && ReleaseHoldLocked();
    }
    if (close) Close();
    if (release) RemoveHold();
    if (fanout == nullptr) return;
    switch (event.event_case()) {
      case v1::WatchEvent::kChanges:
        fanout->UpstreamChanges(generation,
            std::make_shared<const v1::ChangeBatch>(std::move(*event.mutable_changes())));
        break;
      case v1::WatchEvent::kLive:
        fanout->UpstreamLive(generation, event.live().checkpoint());
        break;
      case v1::WatchEvent::kMoved:
        fanout->UpstreamEnded(generation, UpstreamEnd::kMoved, event.moved().owner());
        break;
      case v1::WatchEvent::kResync:
        fanout->UpstreamEnded(generation, UpstreamEnd::kResync, "");
        break;
      case v1::WatchEvent::kRefused:
        Log(LogLevel::kWarning, "upstream_subscription_refused",
            {{"room", event.room()}, {"grpc_code", event.refused().code()},
             {"detail", event.refused().message()}});
        fanout->UpstreamEnded(generation, UpstreamEnd::kResync, "");
        break;
      default:
        break;
    }
  }

  GatewayContext& context_;
  WatchCalls& calls_;
  const int node_;
  grpc::ClientContext client_context_;
  v1::WatchEvent event_;  // the read in flight writes here
  std::shared_ptr<WatchCall> self_;  // until OnDone, gRPC's last reaction

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool holding_ ABSL_GUARDED_BY(mu_) = true;  // gRPC's hold (see Start)
  int outside_writes_starting_ ABSL_GUARDED_BY(mu_) = 0;
  bool node_reads_batches_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::WatchRequest> outgoing_ ABSL_GUARDED_BY(mu_);  // not yet written
  // Being written while writing_ (gRPC reads it then; only NextWriteLocked
  // changes it, under mu_, when no write is in flight).
  v1::WatchRequest in_flight_;
  absl::flat_hash_map<std::string, Watched> rooms_ ABSL_GUARDED_BY(mu_);
};

namespace {

class WatchSubscription final : public RoomUpstream {
 public:
  WatchSubscription(std::shared_ptr<WatchCall> call, std::string room, uint64_t generation)
      : call_(std::move(call)), room_(std::move(room)), generation_(generation) {}
  void Cancel() override { call_->Unsubscribe(room_, generation_); }

 private:
  const std::shared_ptr<WatchCall> call_;
  const std::string room_;
  const uint64_t generation_;
};

}  // namespace

std::shared_ptr<RoomUpstream> SubscribePerRoom(GatewayContext& context,
                                               std::shared_ptr<RoomFanout> fanout,
                                               uint64_t generation,
                                               const std::optional<v1::Checkpoint>& from) {
  auto call = std::make_shared<SubscribeCall>(context, std::move(fanout), generation);
  call->Start(from);
  return call;
}

WatchCalls::WatchCalls(GatewayContext& context) : context_(context) {}

WatchCalls::~WatchCalls() = default;

std::shared_ptr<RoomUpstream> WatchCalls::Subscribe(std::shared_ptr<RoomFanout> fanout,
                                                    uint64_t generation,
                                                    const std::optional<v1::Checkpoint>& from) {
  const int node = context_.NodeIndexFor(fanout->room());
  // A call found ending (it had just closed, carrying no room) is replaced
  // by a fresh one; a fresh one always takes the subscription.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<WatchCall> call;
    bool opened = false;
    {
      absl::MutexLock lock(&mu_);
      if (calls_.size() <= static_cast<size_t>(node)) calls_.resize(static_cast<size_t>(node) + 1);
      call = calls_[static_cast<size_t>(node)];
      if (call == nullptr) {
        call = std::make_shared<WatchCall>(context_, *this, node);
        calls_[static_cast<size_t>(node)] = call;
        opened = true;
      }
    }
    // Queued before the call starts, the subscribe goes out right after.
    const bool taken = call->Subscribe(fanout, generation, from);
    if (opened) call->Start();
    if (taken) return std::make_shared<WatchSubscription>(std::move(call), fanout->room(), generation);
    Remove(node, call.get());
  }
  return nullptr;
}

void WatchCalls::Remove(int node, const WatchCall* call) {
  absl::MutexLock lock(&mu_);
  if (static_cast<size_t>(node) < calls_.size() && calls_[static_cast<size_t>(node)].get() == call) {
    calls_[static_cast<size_t>(node)].reset();
  }
}

void WatchCalls::CancelAll() {
  std::vector<std::shared_ptr<WatchCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    calls.swap(calls_);
  }
  for (auto& call : calls) {
    if (call != nullptr) call->Cancel();
  }
}

int WatchCalls::open() const {
  absl::MutexLock lock(&mu_);
  int open = 0;
  for (const auto& call : calls_) open += call != nullptr ? 1 : 0;
  return open;
}

}  // namespace roomsync

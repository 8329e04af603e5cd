// Per-room fan-out: ONE upstream Subscribe to the room service for all of a
// room's local SSE sessions (all collections, no checkpoint). Each upstream
// batch is encoded once per collection filter in use and the same buffer is
// queued on every session (STYLE.md "Fan-out").
//
// A session with a checkpoint is first "catching up": its live frames are
// buffered while StreamCatchUp pulls from its checkpoint; when the pull
// reaches the end, buffered documents with seq above what the pull sent go
// out and the session turns live: no gap, no duplicate. Thread-safe.
#ifndef ROOMSYNC_GATEWAY_ROOM_FANOUT_H_
#define ROOMSYNC_GATEWAY_ROOM_FANOUT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/client_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {

struct GatewayContext;
class SseSession;

class RoomFanout : public grpc::ClientReadReactor<v1::SubscribeEvent>,
                   public std::enable_shared_from_this<RoomFanout> {
 public:
  RoomFanout(GatewayContext& context, std::string room);
  ~RoomFanout() override;

  // Opens the upstream Subscribe. Call once, holding no lock (gRPC may run
  // reactions on the calling thread).
  void StartUpstream();
  // Adds a session; false when this fan-out is ending (use a new one).
  bool Attach(const std::shared_ptr<SseSession>& session);
  void Detach(uint64_t session_id);
  // Ends the upstream; sessions are closed without RESYNC (drain).
  void Cancel();

  // From StreamCatchUp: everything up to `sent_seq` went out; flush the
  // buffered remainder and make the session live.
  void FinishCatchUp(uint64_t session_id, int64_t sent_seq);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  enum class Phase { kWaitingForLive, kCatchingUp, kLive };
  struct Subscriber {
    std::weak_ptr<SseSession> session;
    std::string collection;
    Phase phase = Phase::kWaitingForLive;
    // Live batches that arrived while catching up.
    std::vector<std::shared_ptr<const v1::ChangeBatch>> buffered;
    // The catch-up's pulls read the store, which can be ahead of the
    // upstream stream: live documents up to this seq were already sent.
    int64_t sent_through = 0;
    size_t buffered_bytes = 0;
  };
  // What to do with sessions once the lock is released.
  struct Followups {
    std::vector<std::shared_ptr<SseSession>> catch_ups;
    std::vector<std::shared_ptr<SseSession>> resyncs;
  };

  // Starts a subscriber's stream once the upstream is live; false when the
  // subscriber must be dropped (it gets RESYNC).
  bool Activate(Subscriber& subscriber, const std::shared_ptr<SseSession>& session,
                Followups& followups) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GoLive(const v1::Checkpoint& head, Followups& followups)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(std::shared_ptr<const v1::ChangeBatch> batch, Followups& followups)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunFollowups(Followups& followups);

  GatewayContext& context_;
  const std::string room_;
  grpc::ClientContext client_context_;
  v1::SubscribeRequest request_;
  v1::SubscribeEvent event_;  // the read in flight writes here
  // Keeps this object alive until OnDone, gRPC's last reaction.
  std::shared_ptr<RoomFanout> self_;

  // Sends happen under mu_: they only post to strands, and holding the lock
  // keeps a catch-up's flush and a live batch from overtaking each other.
  absl::Mutex mu_;
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // TryCancel only after StartCall
  v1::Checkpoint head_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
};

// The gateway's fan-outs by room. Thread-safe.
class RoomFanouts {
 public:
  explicit RoomFanouts(GatewayContext& context);

  // Attaches `session` to its room's fan-out, opening one when needed.
  void Attach(const std::shared_ptr<SseSession>& session);
  void Detach(const std::string& room, uint64_t session_id);
  // Forgets `fanout` if it is still the room's current one.
  void Remove(const std::string& room, const RoomFanout* fanout);
  // Drain: cancels every upstream subscription.
  void CancelAll();

 private:
  GatewayContext& context_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<RoomFanout>> rooms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_ROOM_FANOUT_H_

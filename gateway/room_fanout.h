// Per-room fan-out: ONE upstream subscription to the room service for all
// of a room's local SSE sessions (all collections, no checkpoint): on the
// room node's Watch call (upstream_watch.h), or a Subscribe call of its own
// (--upstream_streams=per_room). When the upstream ends because the room
// moved or its node is gone, the fan-out subscribes again on the room's
// (new) node from the last checkpoint it received: sessions see no gap and
// no RESYNC unless that fails for upstream_retry_window. Each upstream
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
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "absl/synchronization/mutex.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

struct GatewayContext;
class SseSession;

// Where a fan-out's upstream subscription lives: the room's own Subscribe
// call, or the room's subscription on its node's Watch call.
class RoomUpstream {
 public:
  virtual ~RoomUpstream() = default;
  // Ends the subscription; the upstream reports nothing more.
  virtual void Cancel() = 0;
};

struct RetryTimer;

class RoomFanout : public std::enable_shared_from_this<RoomFanout> {
 public:
  RoomFanout(GatewayContext& context, std::string room);
  ~RoomFanout();

  const std::string& room() const { return room_; }

  // Opens the upstream subscription. Call once, holding no lock (gRPC may
  // run reactions on the calling thread).
  void StartUpstream();
  // Adds a session; false when this fan-out is ending (use a new one).
  bool Attach(const std::shared_ptr<SseSession>& session);
  void Detach(uint64_t session_id);
  // Ends the upstream; sessions are closed without RESYNC (drain).
  void Cancel();

  // From StreamCatchUp: everything up to `sent_seq` went out; flush the
  // buffered remainder and make the session live.
  void FinishCatchUp(uint64_t session_id, int64_t sent_seq);

  // From the upstream subscription `generation` (a stale one is ignored),
  // in its order, holding no lock of the upstream's.
  void UpstreamLive(uint64_t generation, const v1::Checkpoint& head);
  void UpstreamChanges(uint64_t generation, std::shared_ptr<const v1::ChangeBatch> batch);
  enum class UpstreamEnd {
    kResync,  // the room cannot serve the stream exactly: every session resyncs
    kMoved,   // the room is served elsewhere now (`owner`, when named)
    kLost,    // the call broke (node gone, network): try again
  };
  void UpstreamEnded(uint64_t generation, UpstreamEnd end, std::string_view owner);

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

  // Subscribes upstream (a new generation) on the room's node now: from
  // head_ once live, so that a subscription moved to another node
  // continues without a gap.
  void SubscribeUpstream();
  // Runs SubscribeUpstream after a backoff (`now`: at once), unless
  // another subscription or the end comes first.
  void ScheduleRetryLocked(uint64_t generation, bool now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the fan-out: sessions get RESYNC `reason` (closed when empty).
  void End(std::string_view reason);
  // Marks the fan-out ending (once) and hands back its upstream to cancel.
  std::shared_ptr<RoomUpstream> EndLocked(bool cancelled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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

  // Sends happen under mu_: they only post to strands, and holding the lock
  // keeps a catch-up's flush and a live batch from overtaking each other.
  absl::Mutex mu_;
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::Checkpoint head_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // unique across fan-outs
  uint64_t ended_generation_ ABSL_GUARDED_BY(mu_) = 0;  // the last one that ended
  std::shared_ptr<RoomUpstream> upstream_ ABSL_GUARDED_BY(mu_);
  // Since when the room has had no upstream (retries), and how many
  // attempts were made since.
  absl::Time lost_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<RetryTimer> retry_timer_ ABSL_GUARDED_BY(mu_);  // a steady_timer
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

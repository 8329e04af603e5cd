// The room service's Prometheus metrics. Thread-safe (prometheus-cpp
// metrics are atomics); prometheus headers stay out of this header so the
// rooms' code does not pay for them.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/time/time.h"
#include "services/room/conflict_resolver.h"
#include "services/room/room_config.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace roomsync {

// What happened to one of this node's shard leases
// (roomsync_shard_lease_changes_total{change}).
enum class ShardLeaseChange {
  kAcquired,       // taken (free, expired or released before)
  kRenewalFailed,  // a renewal call failed (store error or lease taken)
  kReleased,       // handed over: balancing, or the node draining
  kLost,           // taken by another node, or not renewed in time
};

// Store calls outside commits whose errors are counted
// (roomsync_store_errors_total{op}); failed commits are counted by
// ObserveCommit.
enum class StoreOp {
  kAnnounce,     // AnnounceNode (joining, staying, leaving)
  kAcquire,      // AcquireShardLease
  kRenew,        // RenewShardLease
  kRelease,      // ReleaseShardLease
  kLeaseTable,   // ListShardLeases / ListLiveNodes
  kOpenRoom,     // OpenRoom: loading a room's head
  kRead,         // Lookup before a commit, ReadSince / ReadBefore of reads
};

class RoomMetrics {
 public:
  // Registers the metrics in `registry` (which must outlive this object).
  explicit RoomMetrics(prometheus::Registry& registry);
  ~RoomMetrics();

  void CountPush(size_t documents, bool ok);
  void CountDecision(ConflictPolicy policy, Decision decision);
  // A push refused because the room's stored-bytes quota would be exceeded.
  void CountQuotaRefusal();
  // A group committed without a Lookup on the guess that its keys are new
  // (hit), or found one stored and was redone with a Lookup (miss).
  void CountNewKeyGuess(bool hit);
  // A room's first commit sent as its creation (CreateRoomAndCommit);
  // miss: the room existed.
  void CountNewRoomGuess(bool hit);
  // One group commit: how many pushes it answered, how many documents it
  // wrote, how long it took. `ok` false for failed commits.
  void ObserveCommit(size_t pushes, size_t documents, absl::Duration latency, bool ok);
  // `op` is "pull", "history" or "subscribe".
  void CountRead(std::string_view op, bool from_cache);
  void SetSubscribersDelta(int delta);
  void SetActiveRooms(size_t rooms);
  void SetShardLeasesHeld(int shards);
  void CountShardLeaseChange(ShardLeaseChange change, int shards = 1);
  void CountStoreError(StoreOp op);

  // Totals, for tests and logs.
  double commits() const;
  double pushes() const;
  double shard_leases_held() const;
  double shard_lease_changes(ShardLeaseChange change) const;
  double store_errors(StoreOp op) const;

 private:
  struct Families;
  std::unique_ptr<Families> m_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_

// Keeps this room node's shard leases (DESIGN.md, Sharding; store.h
// ShardLease): takes free and expired shards up to a fair share of the
// live nodes, renews what it holds, hands shards over (releases them) when
// it holds more than its share, and tells the room service the moment a
// shard stops being its own. The store is the only coordinator: every node
// runs the same rounds against the same lease table, and the lease epoch
// fences each commit, so a node that loses a lease can no longer write
// even before it notices.
//
// Thread-safe. A round runs on the keeper's thread (or RunRoundForTest).
#ifndef ROOMSYNC_SERVICES_ROOM_SHARD_LEASE_KEEPER_H_
#define ROOMSYNC_SERVICES_ROOM_SHARD_LEASE_KEEPER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/room/room_metrics.h"

namespace roomsync {

class Store;

struct ShardLeaseConfig {
  std::string node_id;  // unique per running process
  std::string address;  // where this node serves gRPC, for routing
  int shard_count = 256;
  // A lease lasts `ttl` by the store's clock; this node counts it from
  // before its renewal call, by its own clock, and stops writing a shard
  // whose lease it could not renew in time.
  absl::Duration ttl = absl::Seconds(10);
  absl::Duration round_every = absl::Seconds(3);
  // While this node holds less than its share and shards are on their way
  // to it (free ones it lost a race for, ones a member holding more than
  // its share will hand over, ones of a node that left and will expire),
  // rounds come this often: a released or expired shard finds its new
  // owner within this, not within a whole round. Renewals keep to
  // round_every.
  absl::Duration hungry_round_every = absl::Milliseconds(250);
};

class ShardLeaseKeeper {
 public:
  // `on_lost(shard)` runs on the keeper's thread when a shard stops being
  // this node's (taken by another node, released, or not renewed in time),
  // after EpochFor(shard) has started answering nullopt.
  // `metrics` (may be null) counts lease changes, shards held and the
  // lease rounds' store errors; it must outlive the keeper.
  ShardLeaseKeeper(Store& store, ShardLeaseConfig config, std::function<void(int)> on_lost,
                   RoomMetrics* metrics = nullptr);
  ~ShardLeaseKeeper();  // Stop(/*release=*/false) if still running

  // Runs one round now, then every round_every (hungry_round_every while
  // shards are on their way to it) on the keeper's thread.
  // `address`, when given, replaces config.address (a port known only once
  // the server listens).
  void Start(std::optional<std::string> address = std::nullopt);
  // Stops the rounds. release: leave the membership and hand every shard
  // over now (graceful drain), else leave the leases to expire (as a crash
  // would). Once stopped the keeper takes no shard again. Callers may race
  // (SIGTERM's drain and RoomAdmin.DrainNode): one stops, the others wait
  // for it and then release what is left (nothing).
  void Stop(bool release);

  // The lease epoch under which this node may write `shard` now.
  std::optional<int64_t> EpochFor(int shard) const;
  // The shard's holder as of the last round ("" when unknown or free).
  std::string OwnerAddress(int shard) const;
  // For refusing a room of a shard this node does not hold: the holder as
  // of the last round or, when that names none (the shard was handed over
  // or taken since), as the lease table says now. The table is read at
  // most every kOwnerLookupInterval, so refusals cannot flood the store.
  std::string LookUpOwner(int shard);
  static constexpr absl::Duration kOwnerLookupInterval = absl::Milliseconds(200);
  int held_shards() const;
  const std::string& node_id() const { return config_.node_id; }

  // Returns whether the round found this node hungry (see
  // hungry_round_every).
  bool RunRoundForTest() { return RunRound(); }

 private:
  struct Held {
    int64_t epoch = 0;
    absl::Time deadline;  // by our clock: the start of the call that got it + ttl
  };

  // One round; true when the next should come after hungry_round_every.
  bool RunRound();
  // `change`: kLost or kReleased (counted when the shard was held).
  void Lose(int shard, std::string_view why, ShardLeaseChange change);
  void CountChange(ShardLeaseChange change);
  void CountStoreError(StoreOp op);
  void UpdateHeldGauge();

  Store& store_;
  ShardLeaseConfig config_;  // address set once, before the first round
  const std::function<void(int)> on_lost_;
  RoomMetrics* const metrics_;  // may be null

  mutable absl::Mutex mu_;
  std::map<int, Held> held_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::string> owners_ ABSL_GUARDED_BY(mu_);  // shard -> address

  absl::Mutex lookup_mu_;  // one LookUpOwner read at a time
  absl::Time owners_read_at_ ABSL_GUARDED_BY(lookup_mu_) = absl::InfinitePast();

  absl::Mutex round_mu_;  // one round at a time (thread, tests, Stop)
  absl::Time next_renewal_ ABSL_GUARDED_BY(round_mu_) = absl::InfinitePast();
  absl::Mutex stop_mu_;  // one Stop at a time: it joins thread_
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_SHARD_LEASE_KEEPER_H_

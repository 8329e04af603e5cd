// ShardLeaseKeeper against a real PostgreSQL: nodes share the shards out,
// a newcomer gets its share from the others' hand-over, a crashed node's
// shards are taken once its leases expire (with a new epoch), and a
// draining node hands everything over at once. Rounds are run by the test,
// one at a time, so each step is deterministic.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "absl/synchronization/mutex.h"
#include "services/room/room_metrics.h"
#include "services/room/shard_lease_keeper.h"
#include "storage/store.h"
#include "tests/support/pg_harness.h"

namespace roomsync {
namespace {

constexpr int kShards = 16;

struct Node {
  // round_every: an hour = only the first round renews; 0 = every round.
  Node(Store& store, const std::string& id, absl::Duration ttl,
       absl::Duration round_every = absl::Hours(1))
      : metrics(registry),
        keeper(store,
               ShardLeaseConfig{.node_id = id,
                                .address = id + ":7070",
                                .shard_count = kShards,
                                .ttl = ttl,
                                .round_every = round_every},
               [this](int shard) {
                 absl::MutexLock lock(&mu);
                 lost.insert(shard);
               },
               &metrics) {}

  std::set<int> Held() const {
    std::set<int> held;
    for (int s = 0; s < kShards; ++s) {
      if (keeper.EpochFor(s).has_value()) held.insert(s);
    }
    return held;
  }
  std::set<int> Lost() {
    absl::MutexLock lock(&mu);
    return lost;
  }

  double Changes(ShardLeaseChange change) const { return metrics.shard_lease_changes(change); }

  prometheus::Registry registry;
  RoomMetrics metrics;
  absl::Mutex mu;
  std::set<int> lost;
  ShardLeaseKeeper keeper;
};

std::unique_ptr<Store> OpenTestStore() {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(testing::CreateTestDatabase());
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST(ShardLeaseKeeper, NodesShareShardsAndANewcomerGetsItsShare) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  Node a(*store, "node-a", absl::Seconds(30));
  EXPECT_FALSE(a.keeper.RunRoundForTest()) << "alone, with every shard: not hungry";
  EXPECT_EQ(a.Held().size(), static_cast<size_t>(kShards));
  EXPECT_EQ(a.keeper.OwnerAddress(3), "node-a:7070");

  Node b(*store, "node-b", absl::Seconds(30));
  // Announces itself; nothing is free yet, but a holds more than its
  // share now: b asks again soon rather than a whole round later.
  EXPECT_TRUE(b.keeper.RunRoundForTest()) << "a newcomer waiting for its share is hungry";
  EXPECT_TRUE(b.Held().empty());
  EXPECT_EQ(b.keeper.OwnerAddress(3), "node-a:7070");
  EXPECT_FALSE(a.keeper.RunRoundForTest());  // sees two members: hands half over
  EXPECT_EQ(a.Held().size(), static_cast<size_t>(kShards / 2));
  EXPECT_EQ(a.Lost().size(), static_cast<size_t>(kShards / 2));
  EXPECT_FALSE(b.keeper.RunRoundForTest()) << "b took its share";
  std::set<int> held_a = a.Held(), held_b = b.Held();
  EXPECT_EQ(held_b.size(), static_cast<size_t>(kShards / 2));
  for (int s = 0; s < kShards; ++s) {
    EXPECT_NE(held_a.contains(s), held_b.contains(s)) << "shard " << s << " needs one owner";
  }
  EXPECT_EQ(held_b, a.Lost());
  for (int s : held_b) EXPECT_EQ(*b.keeper.EpochFor(s), 2) << "shard " << s;
  for (int s : held_a) EXPECT_EQ(*a.keeper.EpochFor(s), 1) << "shard " << s;
  // a handed these over before b took them: a's last round knows no owner
  // for them, the lease table does.
  const int moved = *held_b.begin();
  EXPECT_EQ(a.keeper.OwnerAddress(moved), "");
  EXPECT_EQ(a.keeper.LookUpOwner(moved), "node-b:7070");
  EXPECT_EQ(a.keeper.OwnerAddress(moved), "node-b:7070") << "remembered";
  EXPECT_EQ(a.keeper.LookUpOwner(*held_a.begin()), "node-a:7070");
  // Stable once balanced.
  a.keeper.RunRoundForTest();
  b.keeper.RunRoundForTest();
  EXPECT_EQ(a.Held(), held_a);
  EXPECT_EQ(b.Held(), held_b);
}

TEST(ShardLeaseKeeper, ACrashedNodesShardsAreTakenAfterTheirLeasesExpire) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  // Long enough that a slow round (sanitizers, a loaded machine) cannot
  // outlast it before the "too early" check.
  const absl::Duration ttl = absl::Seconds(2);
  Node a(*store, "node-a", ttl);
  auto b = std::make_unique<Node>(*store, "node-b", ttl);
  b->keeper.RunRoundForTest();
  a.keeper.RunRoundForTest();
  ASSERT_EQ(a.Held().size() + b->Held().size(), static_cast<size_t>(kShards));
  const std::set<int> crashed = b->Held();
  ASSERT_FALSE(crashed.empty());
  b.reset();  // no release: its leases and announcement stay until they expire

  // b still counts as a member and holds more than its share: a keeps
  // looking often, and takes the shards soon after they expire.
  EXPECT_TRUE(a.keeper.RunRoundForTest());
  EXPECT_EQ(a.Held().size(), static_cast<size_t>(kShards) - crashed.size()) << "too early";
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(ttl + absl::Milliseconds(200)));
  EXPECT_FALSE(a.keeper.RunRoundForTest());
  EXPECT_EQ(a.Held().size(), static_cast<size_t>(kShards));
  for (int s : crashed) EXPECT_EQ(*a.keeper.EpochFor(s), 2) << "shard " << s;
  EXPECT_TRUE(a.Lost().empty());
}

TEST(ShardLeaseKeeper, ADrainingNodeHandsEverythingOverAtOnce) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  Node a(*store, "node-a", absl::Seconds(30));
  Node b(*store, "node-b", absl::Seconds(30));
  a.keeper.RunRoundForTest();
  ASSERT_EQ(a.Held().size(), static_cast<size_t>(kShards));
  a.keeper.Stop(/*release=*/true);
  EXPECT_TRUE(a.Held().empty());
  EXPECT_EQ(a.Lost().size(), static_cast<size_t>(kShards));
  b.keeper.RunRoundForTest();
  EXPECT_EQ(b.Held().size(), static_cast<size_t>(kShards));
}

TEST(ShardLeaseKeeper, CountsLeaseChangesAndShardsHeld) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  Node a(*store, "node-a", absl::Seconds(30));
  a.keeper.RunRoundForTest();
  EXPECT_EQ(a.Changes(ShardLeaseChange::kAcquired), kShards);
  EXPECT_EQ(a.metrics.shard_leases_held(), kShards);
  Node b(*store, "node-b", absl::Seconds(30));
  b.keeper.RunRoundForTest();
  a.keeper.RunRoundForTest();  // hands half over
  b.keeper.RunRoundForTest();  // takes it
  EXPECT_EQ(a.Changes(ShardLeaseChange::kReleased), kShards / 2);
  EXPECT_EQ(a.metrics.shard_leases_held(), kShards / 2);
  EXPECT_EQ(b.Changes(ShardLeaseChange::kAcquired), kShards / 2);
  EXPECT_EQ(b.metrics.shard_leases_held(), kShards / 2);
  b.keeper.Stop(/*release=*/true);
  EXPECT_EQ(b.Changes(ShardLeaseChange::kReleased), kShards / 2);
  EXPECT_EQ(b.metrics.shard_leases_held(), 0);
  for (ShardLeaseChange none : {ShardLeaseChange::kLost, ShardLeaseChange::kRenewalFailed}) {
    EXPECT_EQ(a.Changes(none), 0);
    EXPECT_EQ(b.Changes(none), 0);
  }
  for (StoreOp op : {StoreOp::kAnnounce, StoreOp::kAcquire, StoreOp::kRenew, StoreOp::kRelease,
                     StoreOp::kLeaseTable}) {
    EXPECT_EQ(a.metrics.store_errors(op), 0) << static_cast<int>(op);
  }
}

TEST(ShardLeaseKeeper, CountsARenewalThatFindsTheShardTakenAsLost) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  const absl::Duration ttl = absl::Seconds(1);
  Node a(*store, "node-a", ttl, /*round_every=*/absl::ZeroDuration());
  a.keeper.RunRoundForTest();
  ASSERT_EQ(a.Held().size(), static_cast<size_t>(kShards));
  // a stalls past its leases and its announcement (a paused process): b,
  // alone now, takes every shard.
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(ttl + absl::Milliseconds(200)));
  Node b(*store, "node-b", absl::Seconds(30));
  b.keeper.RunRoundForTest();
  ASSERT_EQ(b.Held().size(), static_cast<size_t>(kShards));
  a.keeper.RunRoundForTest();  // renews: every lease is b's now
  EXPECT_EQ(a.Changes(ShardLeaseChange::kRenewalFailed), kShards);
  EXPECT_EQ(a.Changes(ShardLeaseChange::kLost), kShards);
  EXPECT_TRUE(a.Held().empty());
  EXPECT_EQ(a.metrics.shard_leases_held(), 0);
  EXPECT_EQ(a.metrics.store_errors(StoreOp::kRenew), 0) << "a lease taken is not a store error";
}

TEST(ShardLeaseKeeper, ConcurrentStopsReleaseOnceAndTakeNothingAgain) {
  std::unique_ptr<Store> store = OpenTestStore();
  ASSERT_NE(store, nullptr);
  Node a(*store, "node-a", absl::Seconds(30));
  a.keeper.Start();
  ASSERT_EQ(a.Held().size(), static_cast<size_t>(kShards));
  // SIGTERM's drain and RoomAdmin.DrainNode at once.
  std::thread other([&] { a.keeper.Stop(/*release=*/true); });
  a.keeper.Stop(/*release=*/true);
  other.join();
  EXPECT_TRUE(a.Held().empty());
  EXPECT_EQ(a.Changes(ShardLeaseChange::kReleased), kShards) << "each shard released once";
  absl::StatusOr<std::vector<ShardLease>> leases = store->ListShardLeases();
  ASSERT_TRUE(leases.ok()) << leases.status();
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (const ShardLease& lease : *leases) EXPECT_LE(lease.expires_at_ms, now_ms) << lease.shard;
  absl::StatusOr<std::vector<ClusterNode>> members = store->ListLiveNodes();
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_TRUE(members->empty()) << "a left the membership";
}

}  // namespace
}  // namespace roomsync

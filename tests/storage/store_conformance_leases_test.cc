// Store conformance: shard leases and commits fenced by them (DESIGN.md,
// Sharding), on both backends. A lease's epoch grows each time the lease
// is taken, never when it is renewed, and a commit made under an epoch
// that is no longer the shard's writes nothing.
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kLongTtlMs = 60'000;

// Commits one new document "id" to `room` under the lease (shard, epoch).
absl::Status CommitUnderLease(Store& store, const std::string& room, Seq last_seq, int shard,
                              int64_t epoch, const std::string& id) {
  std::vector<StoredDocument> batch = Batch(last_seq, {{"c", id, "v"}});
  return store.Commit(room,
                      CommitFence{.expected_last_seq = last_seq, .shard = shard, .lease_epoch = epoch},
                      batch, 1, 0);
}

TEST_P(StoreConformance, LeaseIsTakenOnceAndRenewedWithoutNewEpoch) {
  ASSERT_OK_AND_ASSIGN(ShardLease a, store_->AcquireShardLease(7, "node-a", "a:7070", kLongTtlMs));
  EXPECT_EQ(a.shard, 7);
  EXPECT_EQ(a.owner, "node-a");
  EXPECT_EQ(a.address, "a:7070");
  EXPECT_EQ(a.epoch, 1);
  EXPECT_GT(a.expires_at_ms, 0);
  // Held and unexpired: another node gets the holder's lease back, as is,
  // and so does the holder itself (taking again is not renewing).
  ASSERT_OK_AND_ASSIGN(ShardLease b, store_->AcquireShardLease(7, "node-b", "b:7070", kLongTtlMs));
  EXPECT_EQ(b.owner, "node-a");
  EXPECT_EQ(b.epoch, 1);
  ASSERT_OK_AND_ASSIGN(ShardLease again, store_->AcquireShardLease(7, "node-a", "a:7070", kLongTtlMs));
  EXPECT_EQ(again.epoch, 1);
  ASSERT_OK_AND_ASSIGN(ShardLease renewed, store_->RenewShardLease(7, "node-a", 1, kLongTtlMs));
  EXPECT_EQ(renewed.epoch, 1);
  EXPECT_GE(renewed.expires_at_ms, a.expires_at_ms);
  EXPECT_EQ(store_->RenewShardLease(7, "node-b", 1, kLongTtlMs).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RenewShardLease(7, "node-a", 2, kLongTtlMs).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Other shards are independent.
  ASSERT_OK_AND_ASSIGN(ShardLease other, store_->AcquireShardLease(8, "node-b", "b:7070", kLongTtlMs));
  EXPECT_EQ(other.owner, "node-b");
  EXPECT_EQ(other.epoch, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<ShardLease> all, store_->ListShardLeases());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].shard, 7);
  EXPECT_EQ(all[0].owner, "node-a");
  EXPECT_EQ(all[1].shard, 8);
  EXPECT_EQ(all[1].owner, "node-b");
}

TEST_P(StoreConformance, ExpiredOrReleasedLeaseIsTakenWithTheNextEpoch) {
  ASSERT_OK(store_->AcquireShardLease(3, "node-a", "a:7070", /*ttl_ms=*/1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_OK_AND_ASSIGN(ShardLease b, store_->AcquireShardLease(3, "node-b", "b:7070", kLongTtlMs));
  EXPECT_EQ(b.owner, "node-b");
  EXPECT_EQ(b.address, "b:7070");
  EXPECT_EQ(b.epoch, 2);
  // The old holder can neither renew nor release what it lost.
  EXPECT_EQ(store_->RenewShardLease(3, "node-a", 1, kLongTtlMs).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(store_->ReleaseShardLease(3, "node-a", 1));
  ASSERT_OK_AND_ASSIGN(ShardLease still, store_->AcquireShardLease(3, "node-c", "c:7070", kLongTtlMs));
  EXPECT_EQ(still.owner, "node-b");
  // A release hands the shard over at once.
  ASSERT_OK(store_->ReleaseShardLease(3, "node-b", 2));
  ASSERT_OK_AND_ASSIGN(ShardLease c, store_->AcquireShardLease(3, "node-c", "c:7070", kLongTtlMs));
  EXPECT_EQ(c.owner, "node-c");
  EXPECT_EQ(c.epoch, 3);
}

TEST_P(StoreConformance, CommitFencedByALostLeaseWritesNothing) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(store_->AcquireShardLease(5, "node-a", "a:7070", kLongTtlMs));
  ASSERT_OK(CommitUnderLease(*store_, "r", 0, 5, 1, "by-a"));
  ASSERT_OK(store_->ReleaseShardLease(5, "node-a", 1));
  ASSERT_OK_AND_ASSIGN(ShardLease b, store_->AcquireShardLease(5, "node-b", "b:7070", kLongTtlMs));
  ASSERT_EQ(b.epoch, 2);
  // node-a still believes in epoch 1, and its view of the room is current:
  // only the lease stops it.
  EXPECT_EQ(CommitUnderLease(*store_, "r", 1, 5, 1, "late-a").code(),
            absl::StatusCode::kFailedPrecondition);
  // A shard nobody ever leased fences nothing in.
  EXPECT_EQ(CommitUnderLease(*store_, "r", 1, 6, 1, "unleased").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(CommitUnderLease(*store_, "r", 1, 5, 2, "by-b"));
  // A stale last_seq under the right lease is the room's usual kAborted.
  EXPECT_EQ(CommitUnderLease(*store_, "r", 1, 5, 2, "stale").code(), absl::StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 2);
  EXPECT_EQ(head.stored_bytes, 2);
  EXPECT_THAT(Summaries(ReadAll("r")), ElementsAre("c/by-a@1", "c/by-b@2"));
}

TEST_P(StoreConformance, AnnouncedNodesAreLiveUntilTheirTtl) {
  ASSERT_OK(store_->AnnounceNode("node-b", "b:7070", kLongTtlMs));
  ASSERT_OK(store_->AnnounceNode("node-a", "a:1", kLongTtlMs));
  ASSERT_OK(store_->AnnounceNode("node-a", "a:7070", kLongTtlMs));  // moved: the newest wins
  ASSERT_OK(store_->AnnounceNode("node-c", "c:7070", /*ttl_ms=*/1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_OK_AND_ASSIGN(std::vector<ClusterNode> live, store_->ListLiveNodes());
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].node_id, "node-a");
  EXPECT_EQ(live[0].address, "a:7070");
  EXPECT_EQ(live[1].node_id, "node-b");
  EXPECT_EQ(store_->AnnounceNode("", "x", kLongTtlMs).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreConformance, LeaseRequestsAreChecked) {
  EXPECT_EQ(store_->AcquireShardLease(-1, "n", "a", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AcquireShardLease(1, "", "a", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AcquireShardLease(1, "n", "a", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RenewShardLease(1, "n", 1, -5).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::vector<ShardLease> none, store_->ListShardLeases());
  EXPECT_THAT(none, IsEmpty());
}

}  // namespace
}  // namespace roomsync

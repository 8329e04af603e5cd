// Store conformance: tombstone compaction (Store::CompactRoom) on both
// backends: old tombstones go, live documents and newer tombstones stay,
// the head's stored_bytes and compacted_through follow, under the same
// fence as a commit.
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Ids(const std::vector<StoredDocument>& docs) {
  std::vector<std::string> ids;
  for (const StoredDocument& d : docs) ids.push_back(d.id);
  return ids;
}

// Batch() gives document seq N the timestamp 1000 * N.
TEST_P(StoreConformance, CompactRoomRemovesOnlyTombstonesOlderThanTheCutoff) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0,
                       {{"m", "live-old", "aaaa"},          // seq 1, live: stays
                        {"m", "dead-old", "bb", true},      // seq 2: removed
                        {"u", "dead-old-2", "ccc", true},   // seq 3: removed
                        {"m", "dead-new", "dddd", true},    // seq 4: newer than the cutoff
                        {"m", "live-new", "e"}}));          // seq 5
  ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom("r"));
  EXPECT_EQ(before.compacted_through, 0);
  EXPECT_EQ(before.stored_bytes, 14);

  ASSERT_OK_AND_ASSIGN(CompactionResult result,
                       store_->CompactRoom("r", CommitFence{.expected_last_seq = 5}, 4000));
  EXPECT_EQ(result.removed, 2);
  EXPECT_EQ(result.removed_bytes, 5);
  EXPECT_EQ(result.compacted_through, 3);

  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("r"));
  EXPECT_EQ(after.compacted_through, 3);
  EXPECT_EQ(after.stored_bytes, 9);
  EXPECT_EQ(after.last_seq, 5);  // compaction assigns no seq
  EXPECT_EQ(after.epoch, before.epoch);
  ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> all, store_->ReadSince("r", 0, ReadRange{"", 10}));
  EXPECT_THAT(Ids(all), ElementsAre("live-old", "dead-new", "live-new"));
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> summary, store_->DescribeRoom("r"));
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->head.compacted_through, 3);
  EXPECT_EQ(summary->document_bytes, summary->head.stored_bytes);

  // Nothing old enough left: a no-op that keeps compacted_through.
  ASSERT_OK_AND_ASSIGN(CompactionResult again,
                       store_->CompactRoom("r", CommitFence{.expected_last_seq = 5}, 4000));
  EXPECT_EQ(again.removed, 0);
  EXPECT_EQ(again.compacted_through, 3);

  // The room goes on committing from its head; a deleted id comes back as
  // a new document.
  ASSERT_OK(CommitDocs("r", 5, {{"m", "dead-old", "back"}}));
  ASSERT_OK_AND_ASSIGN(RoomHead next, store_->OpenRoom("r"));
  EXPECT_EQ(next.last_seq, 6);
  EXPECT_EQ(next.stored_bytes, 13);
  EXPECT_EQ(next.compacted_through, 3);

  // compacted_through only grows: a later compaction of the seq-4
  // tombstone raises it to 4.
  ASSERT_OK_AND_ASSIGN(CompactionResult later,
                       store_->CompactRoom("r", CommitFence{.expected_last_seq = 6}, 1'000'000));
  EXPECT_EQ(later.removed, 1);
  EXPECT_EQ(later.compacted_through, 4);
}

// A snapshot's compaction (docs/api.md, "Snapshots"): tombstones of any
// age, but only those at or below the snapshot's seq.
TEST_P(StoreConformance, CompactRoomThroughSeqRemovesOnlyCoveredTombstones) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0,
                       {{"m", "live", "aaaa"},             // seq 1, live: stays
                        {"m", "dead-covered", "bb", true},  // seq 2: removed
                        {"m", "dead-after", "ccc", true},   // seq 3: above the bound
                        {"m", "live-after", "d"}}));        // seq 4
  ASSERT_OK_AND_ASSIGN(CompactionResult result,
                       store_->CompactRoom("r", CommitFence{.expected_last_seq = 4}, INT64_MAX,
                                           /*through_seq=*/2));
  EXPECT_EQ(result.removed, 1);
  EXPECT_EQ(result.removed_bytes, 2);
  EXPECT_EQ(result.compacted_through, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> all, store_->ReadSince("r", 0, ReadRange{"", 10}));
  EXPECT_THAT(Ids(all), ElementsAre("live", "dead-after", "live-after"));
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.compacted_through, 2);
  EXPECT_EQ(head.stored_bytes, 8);
}

TEST_P(StoreConformance, CompactRoomIsFencedLikeACommit) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"m", "gone", "x", true}}));
  // A writer whose view of the head is stale removes nothing.
  EXPECT_EQ(store_->CompactRoom("r", CommitFence{.expected_last_seq = 0}, 1'000'000)
                .status()
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(store_->CompactRoom("never-opened", CommitFence{}, 1'000'000).status().code(),
            absl::StatusCode::kAborted);
  // A lease another node took removes nothing either.
  ASSERT_OK_AND_ASSIGN(ShardLease mine, store_->AcquireShardLease(3, "a", "a:1", 60'000));
  ASSERT_OK(store_->ReleaseShardLease(3, "a", mine.epoch));
  ASSERT_OK_AND_ASSIGN(ShardLease theirs, store_->AcquireShardLease(3, "b", "b:1", 60'000));
  ASSERT_NE(theirs.epoch, mine.epoch);
  EXPECT_EQ(store_->CompactRoom("r",
                                CommitFence{.expected_last_seq = 1, .shard = 3,
                                            .lease_epoch = mine.epoch},
                                1'000'000)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> all, store_->ReadSince("r", 0, ReadRange{"", 10}));
  EXPECT_THAT(Ids(all), ElementsAre("gone"));
  // Under the current lease it goes.
  ASSERT_OK_AND_ASSIGN(CompactionResult result,
                       store_->CompactRoom("r",
                                           CommitFence{.expected_last_seq = 1, .shard = 3,
                                                       .lease_epoch = theirs.epoch},
                                           1'000'000));
  EXPECT_EQ(result.removed, 1);
  EXPECT_EQ(result.compacted_through, 1);
}

// An export of a compacted room carries compacted_through, and an import
// keeps it, so a restored room still makes old checkpoints start over.
TEST_P(StoreConformance, ExportAndImportKeepCompactedThrough) {
  ASSERT_OK(store_->ImportRoom("copy", RoomHead{"e", 9, 0, 7}, {{{"c", "i", 1, false, 8, "v"}}}));
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("copy"));
  EXPECT_EQ(head.compacted_through, 7);
  EXPECT_EQ(head.last_seq, 9);
  struct Sink : ExportSink {
    RoomHead head;
    absl::Status Head(const RoomHead& h) override {
      head = h;
      return absl::OkStatus();
    }
    absl::Status Page(std::vector<StoredDocument>) override { return absl::OkStatus(); }
  } sink;
  ASSERT_OK(store_->ExportRoom("copy", 10, sink));
  EXPECT_EQ(sink.head.compacted_through, 7);
}

}  // namespace
}  // namespace roomsync

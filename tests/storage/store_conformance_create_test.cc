// Store conformance: CreateRoomAndCommit, a new room's open and first
// commit in one round trip (store.h), on both backends. A room that does
// not exist is created with the given epoch and its documents, exactly as
// OpenRoom + Commit would leave it; a room that exists is left untouched
// and its head answered; a lost lease writes nothing; many rooms at once
// (one group) each get their own answer.
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "storage/document_digest.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

struct FirstCommit {
  std::vector<StoredDocument> documents;
  int64_t stored_bytes_delta = 0;
  uint64_t digest_delta = 0;
};

FirstCommit FirstCommitOf(const std::vector<NewDoc>& docs) {
  FirstCommit commit;
  commit.documents = Batch(0, docs);
  for (const StoredDocument& doc : commit.documents) {
    commit.stored_bytes_delta += static_cast<int64_t>(doc.json.size());
    commit.digest_delta ^= DocumentDigest(doc);
  }
  return commit;
}

TEST_P(StoreConformance, CreateRoomAndCommitCreatesANewRoomWithItsDocuments) {
  const FirstCommit commit = FirstCommitOf({{"messages", "a", R"({"v":1})"}, {"messages", "b", R"({"v":22})"}});
  ASSERT_OK_AND_ASSIGN(std::optional<RoomHead> existing,
                       store_->CreateRoomAndCommit("fresh", "e-fresh", CommitFence{}, commit.documents,
                                                   commit.stored_bytes_delta, commit.digest_delta));
  EXPECT_FALSE(existing.has_value());
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("fresh"));
  EXPECT_EQ(head.epoch, "e-fresh");
  EXPECT_EQ(head.last_seq, 2);
  EXPECT_EQ(head.stored_bytes, SumOfJsonSizes("fresh"));
  EXPECT_EQ(FormatDigest(head.digest), FormatDigest(commit.digest_delta));
  EXPECT_THAT(Summaries(ReadAll("fresh")), ::testing::ElementsAre("messages/a@1", "messages/b@2"));
  // The room goes on as any other.
  ASSERT_OK(CommitDocs("fresh", 2, {{"messages", "c", "{}"}}));
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> summary, store_->DescribeRoom("fresh"));
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->head.last_seq, 3);
  EXPECT_EQ(FormatDigest(summary->document_digest), FormatDigest(summary->head.digest));
}

TEST_P(StoreConformance, CreateRoomAndCommitLeavesAnExistingRoomAndAnswersItsHead) {
  for (const bool empty : {true, false}) {
    const std::string room = empty ? "opened" : "written";
    ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom(room));
    if (!empty) {
      ASSERT_OK(CommitDocs(room, 0, {{"messages", "x", R"({"old":1})"}}));
      ASSERT_OK_AND_ASSIGN(before, store_->OpenRoom(room));
    }
    const FirstCommit commit = FirstCommitOf({{"messages", "y", R"({"new":1})"}});
    ASSERT_OK_AND_ASSIGN(std::optional<RoomHead> existing,
                         store_->CreateRoomAndCommit(room, "e-other", CommitFence{}, commit.documents,
                                                     commit.stored_bytes_delta, commit.digest_delta));
    ASSERT_TRUE(existing.has_value()) << room;
    EXPECT_EQ(existing->epoch, before.epoch);
    EXPECT_EQ(existing->last_seq, before.last_seq);
    EXPECT_EQ(existing->stored_bytes, before.stored_bytes);
    EXPECT_EQ(existing->digest, before.digest);
    ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom(room));
    EXPECT_EQ(after.epoch, before.epoch) << "nothing written";
    EXPECT_EQ(after.last_seq, before.last_seq);
    EXPECT_EQ(ReadAll(room).size(), empty ? 0u : 1u);
  }
}

TEST_P(StoreConformance, CreateRoomAndCommitUnderALostLeaseWritesNothing) {
  ASSERT_OK_AND_ASSIGN(ShardLease mine, store_->AcquireShardLease(7, "node-a", "a:1", 60000));
  const FirstCommit commit = FirstCommitOf({{"messages", "a", "{}"}});
  CommitFence fence;
  fence.shard = 7;
  fence.lease_epoch = mine.epoch + 1;  // a lease this node does not hold
  absl::StatusOr<std::optional<RoomHead>> refused = store_->CreateRoomAndCommit(
      "leased", "e-leased", fence, commit.documents, commit.stored_bytes_delta, commit.digest_delta);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> summary, store_->DescribeRoom("leased"));
  EXPECT_FALSE(summary.has_value()) << "the room was not created";
  fence.lease_epoch = mine.epoch;
  ASSERT_OK_AND_ASSIGN(std::optional<RoomHead> existing,
                       store_->CreateRoomAndCommit("leased", "e-leased", fence, commit.documents,
                                                   commit.stored_bytes_delta, commit.digest_delta));
  EXPECT_FALSE(existing.has_value());
}

TEST_P(StoreConformance, CreateRoomAndCommitFromManyThreadsAnswersEachRoom) {
  // New and existing rooms at once: they may share a group (one statement).
  constexpr int kRooms = 24;
  for (int i = 0; i < kRooms; i += 2) ASSERT_OK(store_->OpenRoom("many-" + std::to_string(i)).status());
  std::vector<absl::StatusOr<std::optional<RoomHead>>> answers(kRooms, absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kRooms; ++i) {
    threads.emplace_back([&, i] {
      const FirstCommit commit = FirstCommitOf({{"messages", "m" + std::to_string(i), "{}"}});
      answers[i] = store_->CreateRoomAndCommit("many-" + std::to_string(i), "e-" + std::to_string(i),
                                               CommitFence{}, commit.documents,
                                               commit.stored_bytes_delta, commit.digest_delta);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kRooms; ++i) {
    const std::string room = "many-" + std::to_string(i);
    ASSERT_TRUE(answers[i].ok()) << room << ": " << answers[i].status();
    EXPECT_EQ(answers[i]->has_value(), i % 2 == 0) << room;
    ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom(room));
    EXPECT_EQ(head.last_seq, i % 2 == 0 ? 0 : 1) << room;
    if (i % 2 == 1) EXPECT_EQ(head.epoch, "e-" + std::to_string(i));
  }
}

}  // namespace
}  // namespace roomsync

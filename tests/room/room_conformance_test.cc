// The protocol's push/pull/history semantics through the RoomSync gRPC API,
// run against both stores: the same behaviour on SQLite and PostgreSQL.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/room/room_client.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using StoreUrlFactory = std::string (*)();

class RoomConformance : public ::testing::TestWithParam<StoreUrlFactory> {
 protected:
  void SetUp() override {
    RoomServiceConfig service;
    service.collection_policies["pins"] = ConflictPolicy::kServerWins;
    service.limits.max_document_bytes = 4096;
    service.limits.max_documents_per_push = 50;
    service.limits.max_push_bytes = 64 * 1024;
    service.recent_changes_per_room = 8;  // small, so reads cross cache and store
    server_ = StartTestServer(GetParam()(), service);
    client_ = RoomClient::Connect(server_->grpc_port());
  }

  std::vector<v1::Document> All(const std::string& room, const std::string& collection = "") {
    return client_->PullAll(room, collection, 1000);
  }

  std::unique_ptr<RoomServer> server_;
  std::unique_ptr<RoomClient> client_;
};

TEST_P(RoomConformance, AcceptsNewDocumentAndNewerTimestamp) {
  int64_t t = NowMs();
  PushResult first = client_->Push("r", "messages", {DocJson("a", t, "Hey")});
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.response.conflicts_size(), 0);
  EXPECT_EQ(first.response.accepted(), 1);
  PushResult second = client_->Push("r", "messages", {DocJson("a", t + 1, "Hi")});
  ASSERT_TRUE(second.status.ok());
  EXPECT_EQ(second.response.conflicts_size(), 0);
  std::vector<v1::Document> docs = All("r", "messages");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].json(), DocJson("a", t + 1, "Hi"));
  EXPECT_EQ(docs[0].seq(), 2);
}

TEST_P(RoomConformance, LastWriteWinsRejectsOlderAndReturnsServerDocument) {
  int64_t t = NowMs();
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t, "Hi")}).status.ok());
  PushResult stale = client_->Push("r", "messages", {DocJson("a", t - 10, "Hey")});
  ASSERT_TRUE(stale.status.ok());
  ASSERT_EQ(stale.response.conflicts_size(), 1);
  EXPECT_EQ(stale.response.conflicts(0).json(), DocJson("a", t, "Hi"));
  EXPECT_EQ(stale.response.accepted(), 0);
  EXPECT_EQ(All("r")[0].json(), DocJson("a", t, "Hi"));
}

// The room commits a group without a lookup when it guesses that every key
// is new, and turns the guess off for a while after a wrong one: whichever
// way each push goes, a stale re-push of a stored id is a conflict and a
// new id is accepted.
TEST_P(RoomConformance, StaleRepushesAmongNewIdsConflictWhetherOrNotLookedUp) {
  int64_t t = NowMs();
  int conflicts = 0;
  for (int i = 0; i < 60; ++i) {
    const bool stale = i % 7 == 6;
    std::string doc = stale ? DocJson("m" + std::to_string(i - 6), t - 1, "old")
                            : DocJson("m" + std::to_string(i), t, "new");
    PushResult pushed = client_->Push("r", "messages", {doc});
    ASSERT_TRUE(pushed.status.ok()) << i << ": " << pushed.status.error_message();
    EXPECT_EQ(pushed.response.conflicts_size(), stale ? 1 : 0) << i;
    EXPECT_EQ(pushed.response.accepted(), stale ? 0 : 1) << i;
    conflicts += pushed.response.conflicts_size();
  }
  EXPECT_EQ(conflicts, 8);
  std::vector<v1::Document> docs = All("r", "messages");
  ASSERT_EQ(docs.size(), 52u);
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(docs[i].seq(), static_cast<int64_t>(i + 1));
    EXPECT_NE(docs[i].json().find("new"), std::string::npos) << docs[i].json();
  }
}

TEST_P(RoomConformance, EqualTimestampTieBreakConvergesInAnyOrder) {
  int64_t t = NowMs();
  std::string low = DocJson("a", t, "AAAA"), high = DocJson("a", t, "ZZZZ");
  ASSERT_TRUE(client_->Push("one", "messages", {low}).status.ok());
  PushResult r1 = client_->Push("one", "messages", {high});
  ASSERT_TRUE(client_->Push("two", "messages", {high}).status.ok());
  PushResult r2 = client_->Push("two", "messages", {low});
  EXPECT_EQ(r1.response.conflicts_size(), 0);  // greater bytes win
  ASSERT_EQ(r2.response.conflicts_size(), 1);  // smaller bytes lose
  EXPECT_EQ(r2.response.conflicts(0).json(), high);
  EXPECT_EQ(All("one")[0].json(), high);
  EXPECT_EQ(All("two")[0].json(), high);
}

TEST_P(RoomConformance, RepushOfStoredStateIsNoop) {
  int64_t t = NowMs();
  std::string doc = DocJson("a", t, "Hi");
  ASSERT_TRUE(client_->Push("r", "messages", {doc}).status.ok());
  PushResult again = client_->Push("r", "messages", {doc});
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.response.conflicts_size(), 0);
  EXPECT_EQ(again.response.accepted(), 0);
  EXPECT_EQ(again.response.checkpoint().seq(), 1);  // no new seq
  EXPECT_EQ(All("r")[0].seq(), 1);
}

TEST_P(RoomConformance, ServerWinsAcceptsOnlyMatchingAssumedMaster) {
  int64_t t = NowMs();
  std::string v1doc = DocJson("p", t, "v1");
  // Plain document: accepted while the id is new, refused afterwards.
  ASSERT_EQ(client_->Push("r", "pins", {v1doc}).response.conflicts_size(), 0);
  PushResult plain = client_->Push("r", "pins", {DocJson("p", t + 5, "v2")});
  ASSERT_EQ(plain.response.conflicts_size(), 1);
  EXPECT_EQ(plain.response.conflicts(0).json(), v1doc);
  // Wrong assumed master (timestamp differs): conflict, even though newer.
  PushResult wrong = client_->PushRow("r", "pins", DocJson("p", t + 6, "v2"), DocJson("p", t - 1, "old"));
  ASSERT_EQ(wrong.response.conflicts_size(), 1);
  // null assumed master while stored: conflict.
  EXPECT_EQ(client_->PushRow("r", "pins", DocJson("p", t + 6, "v2"), "null").response.conflicts_size(), 1);
  // Matching assumed master: accepted even with an older timestamp.
  PushResult right = client_->PushRow("r", "pins", DocJson("p", t - 100, "v3"), v1doc);
  ASSERT_TRUE(right.status.ok());
  EXPECT_EQ(right.response.conflicts_size(), 0);
  EXPECT_EQ(All("r", "pins")[0].json(), DocJson("p", t - 100, "v3"));
  // null assumed master for a new id: accepted.
  EXPECT_EQ(client_->PushRow("r", "pins", DocJson("q", t, "x"), "null").response.conflicts_size(), 0);
}

TEST_P(RoomConformance, TombstonesReplicate) {
  int64_t t = NowMs();
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t, "x")}).status.ok());
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t + 1, "", true)}).status.ok());
  std::vector<v1::Document> docs = All("r");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_TRUE(docs[0].deleted());
  EXPECT_EQ(docs[0].seq(), 2);
}

TEST_P(RoomConformance, PullPagesAcrossBatchesWithInterleavedChanges) {
  int64_t t = NowMs();
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(client_->Push("r", i % 2 ? "threads" : "messages",
                              {DocJson("d" + std::to_string(i), t, "x")}).status.ok());
  }
  v1::PullRequest request;
  request.set_room("r");
  request.set_batch_size(10);
  std::vector<int64_t> seqs;
  std::set<std::string> ids;
  for (int page = 0; page < 10; ++page) {
    v1::PullResponse response;
    ASSERT_TRUE(client_->Pull(request, &response).ok());
    if (response.documents().empty()) {
      EXPECT_EQ(response.checkpoint().seq(), request.checkpoint().seq());
      break;
    }
    EXPECT_LE(response.documents_size(), 10);
    for (const v1::Document& d : response.documents()) {
      seqs.push_back(d.seq());
      ids.insert(d.collection() + "/" + d.id());
    }
    *request.mutable_checkpoint() = response.checkpoint();
    if (page == 0) {
      // Between pages: d0 changes (moves to the end) and a new one arrives.
      ASSERT_TRUE(client_->Push("r", "messages", {DocJson("d0", t + 1, "y")}).status.ok());
      ASSERT_TRUE(client_->Push("r", "messages", {DocJson("new", t, "z")}).status.ok());
    }
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::set<int64_t>(seqs.begin(), seqs.end()).size(), seqs.size());
  EXPECT_EQ(ids.size(), 26u);           // every document, the new one too
  EXPECT_EQ(seqs.back(), 27);           // d0's newest state was delivered last
  std::vector<v1::Document> threads = All("r", "threads");
  EXPECT_EQ(threads.size(), 12u);
  for (const v1::Document& d : threads) EXPECT_EQ(d.collection(), "threads");
}

TEST_P(RoomConformance, DocumentChangedTwiceAppearsOnceAtNewestSeq) {
  int64_t t = NowMs();
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t, "1"), DocJson("b", t, "1")}).status.ok());
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t + 1, "2")}).status.ok());
  std::vector<v1::Document> docs = All("r");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].id(), "b");
  EXPECT_EQ(docs[1].id(), "a");
  EXPECT_EQ(docs[1].seq(), 3);
}

TEST_P(RoomConformance, CheckpointOfAnotherEpochServesFromBeginning) {
  int64_t t = NowMs();
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", t, "1"), DocJson("b", t, "1")}).status.ok());
  v1::PullRequest request;
  request.set_room("r");
  request.mutable_checkpoint()->set_seq(2);
  request.mutable_checkpoint()->set_epoch("an-old-epoch");
  v1::PullResponse response;
  ASSERT_TRUE(client_->Pull(request, &response).ok());
  EXPECT_EQ(response.documents_size(), 2);
  EXPECT_NE(response.checkpoint().epoch(), "an-old-epoch");
  EXPECT_EQ(response.checkpoint().seq(), 2);
}

TEST_P(RoomConformance, HistoryPagesNewestFirst) {
  int64_t t = NowMs();
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client_->Push("r", "messages", {DocJson("m" + std::to_string(i), t, "x")}).status.ok());
  }
  v1::HistoryRequest request;
  request.set_room("r");
  request.set_limit(3);
  std::vector<int64_t> seqs;
  for (int page = 0; page < 5; ++page) {
    v1::HistoryResponse response;
    ASSERT_TRUE(client_->History(request, &response).ok());
    for (const v1::Document& d : response.documents()) seqs.push_back(d.seq());
    if (!response.has_next()) break;
    *request.mutable_before() = response.next();
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1}));
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RoomConformance, ::testing::Values(&TempSqliteUrl));
INSTANTIATE_TEST_SUITE_P(Postgres, RoomConformance, ::testing::Values(&CreateTestDatabase));

}  // namespace
}  // namespace roomsync::testing

// Store conformance: rooms, commits, fences, lookups, bytes, durability.
// Paging is in store_conformance_reads_test.cc, concurrency in
// store_conformance_concurrency_test.cc; all run against both backends.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string NewPostgresUrl() { return testing::CreateTestDatabase(); }

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
                         ::testing::Values(Backend{"Sqlite", &testing::TempSqliteUrl}),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
                         ::testing::Values(Backend{"Postgres", &NewPostgresUrl}),
                         [](const auto& info) { return info.param.name; });

TEST_P(StoreConformance, OpenRoomCreatesRoomWithStableEpoch) {
  ASSERT_OK_AND_ASSIGN(RoomHead first, store_->OpenRoom("lobby"));
  EXPECT_FALSE(first.epoch.empty());
  EXPECT_EQ(first.last_seq, 0);
  ASSERT_OK_AND_ASSIGN(RoomHead again, store_->OpenRoom("lobby"));
  EXPECT_EQ(again.epoch, first.epoch);
  EXPECT_EQ(again.last_seq, 0);
}

TEST_P(StoreConformance, DistinctRoomsGetDistinctEpochs) {
  ASSERT_OK_AND_ASSIGN(RoomHead a, store_->OpenRoom("a"));
  ASSERT_OK_AND_ASSIGN(RoomHead b, store_->OpenRoom("b"));
  EXPECT_NE(a.epoch, b.epoch);
  EXPECT_EQ(a.epoch.size(), 32u);  // 16 random bytes, hex
}

TEST_P(StoreConformance, CommitKeepsSeqsAndAdvancesLastSeq) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"msgs", "m1", "1"}, {"msgs", "m2", "2"}, {"users", "u1", "3"}}));
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 3);
  ASSERT_OK(CommitDocs("r", 3, {{"msgs", "m3", "4"}, {"msgs", "m4", "5"}}));
  ASSERT_OK_AND_ASSIGN(head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 5);
  EXPECT_THAT(Summaries(ReadAll("r")),
              ElementsAre("msgs/m1@1", "msgs/m2@2", "users/u1@3", "msgs/m3@4", "msgs/m4@5"));
  std::vector<StoredDocument> all = ReadAll("r");
  EXPECT_EQ(all[2].timestamp_ms, 3000);
  EXPECT_EQ(all[2].json, "3");
}

TEST_P(StoreConformance, EmptyCommitChecksFenceOnly) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {}));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "x"}}));
  EXPECT_EQ(CommitDocs("r", 0, {}).code(), absl::StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 1);
}

TEST_P(StoreConformance, UpsertReplacesEarlierStateOfSameKey) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "a-v1"}, {"c", "b", "b-v1"}}));
  ASSERT_OK(CommitDocs("r", 2, {{"c", "a", "a-v2"}}));
  ASSERT_OK(CommitDocs("r", 3, {{"c", "a", "a-v3"}, {"d", "a", "other collection"}}));
  std::vector<StoredDocument> all = ReadAll("r");
  EXPECT_THAT(Summaries(all), ElementsAre("c/b@2", "c/a@4", "d/a@5"));
  EXPECT_EQ(all[1].json, "a-v3");
  EXPECT_EQ(all[1].timestamp_ms, 4000);
}

TEST_P(StoreConformance, StaleFenceIsAbortedAndWritesNothing) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "v1"}, {"c", "b", "v1"}}));
  // Behind (another writer committed) and ahead (a writer's own bug).
  EXPECT_EQ(CommitDocs("r", 0, {{"c", "a", "stale"}, {"c", "z", "stale"}}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(CommitDocs("r", 1, {{"c", "z", "stale"}}).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(CommitDocs("r", 7, {{"c", "z", "stale"}}).code(), absl::StatusCode::kAborted);
  // A room nobody opened has no head to fence against.
  EXPECT_EQ(CommitDocs("never-opened", 0, {{"c", "z", "x"}}).code(),
            absl::StatusCode::kAborted);

  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 2);
  std::vector<StoredDocument> all = ReadAll("r");
  EXPECT_THAT(Summaries(all), ElementsAre("c/a@1", "c/b@2"));
  EXPECT_EQ(all[0].json, "v1");
  EXPECT_THAT(ReadAll("never-opened"), IsEmpty());
}

// CommitFence::keys_are_new: the writer skipped Lookup. New keys commit
// as usual; one stored key (even a tombstone, even among new ones) refuses
// the whole commit with kAlreadyExists and writes nothing; a stale fence
// is still kAborted.
TEST_P(StoreConformance, NewKeysCommitIsRefusedWholeWhenAKeyIsStored) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "v1"}, {"c", "gone", "", /*deleted=*/true}}));
  auto commit_new = [&](Seq fence, const std::vector<NewDoc>& docs) {
    std::vector<StoredDocument> batch = Batch(fence, docs);
    int64_t bytes = 0;
    for (const StoredDocument& doc : batch) bytes += static_cast<int64_t>(doc.json.size());
    return store_->Commit("r", CommitFence{.expected_last_seq = fence, .keys_are_new = true},
                          batch, bytes, 0);
  };
  ASSERT_OK(commit_new(2, {{"c", "b", "v1"}, {"d", "a", "same id, other collection"}}));
  EXPECT_EQ(commit_new(4, {{"c", "new", "x"}, {"c", "a", "v2"}}).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(commit_new(4, {{"c", "gone", "back"}}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(commit_new(3, {{"c", "new", "x"}}).code(), absl::StatusCode::kAborted);

  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 4);
  EXPECT_EQ(head.stored_bytes, 2 + 2 + 25);
  std::vector<StoredDocument> all = ReadAll("r");
  EXPECT_THAT(Summaries(all), ElementsAre("c/a@1", "c/gone@2", "c/b@3", "d/a@4"));
  EXPECT_EQ(all[0].json, "v1");
}

TEST_P(StoreConformance, RejectsMalformedRequests) {
  ASSERT_OK(store_->OpenRoom("r"));
  // Seqs must continue the fence without gaps.
  std::vector<StoredDocument> gap = {{"c", "a", 1, false, 2, "x"}};
  EXPECT_EQ(store_->Commit("r", CommitFence{0}, gap, 1, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommitDocs("r", 0, {{"c", std::string("a\0b", 3), "x"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommitDocs("r", 0, {{"c", "\xff\xfe", "x"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadSince("r", 0, ReadRange{"", 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->OpenRoom("").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.last_seq, 0);
}

TEST_P(StoreConformance, LookupAnswersInKeyOrderWithMissingKeys) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "A"}, {"c", "b", "B"}, {"d", "a", "dA"}}));
  std::vector<DocumentKey> keys = {
      {"c", "b"}, {"c", "missing"}, {"d", "a"}, {"c", "a"}, {"e", "a"}, {"c", "b"}};
  ASSERT_OK_AND_ASSIGN(auto found, store_->Lookup("r", keys));
  ASSERT_EQ(found.size(), keys.size());
  ASSERT_TRUE(found[0].has_value());
  EXPECT_EQ(found[0]->json, "B");
  EXPECT_EQ(found[0]->seq, 2);
  EXPECT_FALSE(found[1].has_value());
  ASSERT_TRUE(found[2].has_value());
  EXPECT_EQ(found[2]->json, "dA");
  EXPECT_EQ(found[2]->collection, "d");
  ASSERT_TRUE(found[3].has_value());
  EXPECT_EQ(found[3]->json, "A");
  EXPECT_EQ(found[3]->timestamp_ms, 1000);
  EXPECT_FALSE(found[4].has_value());
  ASSERT_TRUE(found[5].has_value());  // a repeated key is answered twice
  EXPECT_EQ(found[5]->id, "b");

  ASSERT_OK_AND_ASSIGN(auto none, store_->Lookup("r", {}));
  EXPECT_THAT(none, IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto elsewhere, store_->Lookup("other-room", keys));
  for (const auto& doc : elsewhere) EXPECT_FALSE(doc.has_value());
}

TEST_P(StoreConformance, BytesAndKeysRoundTripExactly) {
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  std::string large(64 * 1024, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>((i * 7919) >> 3);
  const std::string utf8 = "{\"text\":\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"}";
  // Keys that stress array-literal quoting and text handling.
  const std::vector<NewDoc> docs = {
      {"c", "binary", every_byte},
      {"c", "large", large},
      {"c", "utf8", utf8},
      {"c", "empty", ""},
      {"c", "quote\"back\\slash", "q"},
      {"c", "{comma,brace}", "b"},
      {"c", "NULL", "n"},
      {"c", " spaced ", "s"},
      {"c", "", "empty id"},
      {"k\xC3\xA9y", "\xE2\x82\xAC", "utf8 key"},
  };
  ASSERT_OK(store_->OpenRoom("bytes"));
  ASSERT_OK(CommitDocs("bytes", 0, docs));

  std::vector<StoredDocument> all = ReadAll("bytes");
  ASSERT_EQ(all.size(), docs.size());
  std::vector<DocumentKey> keys;
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(all[i].collection, docs[i].collection) << i;
    EXPECT_EQ(all[i].id, docs[i].id) << i;
    EXPECT_TRUE(all[i].json == docs[i].json) << "json differs for doc " << i;
    keys.push_back({docs[i].collection, docs[i].id});
  }
  ASSERT_OK_AND_ASSIGN(auto found, store_->Lookup("bytes", keys));
  for (size_t i = 0; i < docs.size(); ++i) {
    ASSERT_TRUE(found[i].has_value()) << i;
    EXPECT_TRUE(found[i]->json == docs[i].json) << "json differs for doc " << i;
    EXPECT_EQ(found[i]->seq, static_cast<Seq>(i + 1));
  }
}

TEST_P(StoreConformance, TombstonesAreKeptAndReturned) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "alive"}, {"c", "b", "alive"}}));
  ASSERT_OK(CommitDocs("r", 2, {{"c", "a", "{\"_deleted\":true}", /*deleted=*/true}}));
  std::vector<StoredDocument> all = ReadAll("r");
  ASSERT_THAT(Summaries(all), ElementsAre("c/b@2", "c/a@3"));
  EXPECT_FALSE(all[0].deleted);
  EXPECT_TRUE(all[1].deleted);
  EXPECT_EQ(all[1].json, "{\"_deleted\":true}");
  ASSERT_OK_AND_ASSIGN(auto found, store_->Lookup("r", std::vector<DocumentKey>{{"c", "a"}}));
  ASSERT_TRUE(found[0].has_value());
  EXPECT_TRUE(found[0]->deleted);
  // A tombstone can be revived by a later write.
  ASSERT_OK(CommitDocs("r", 3, {{"c", "a", "back"}}));
  ASSERT_OK_AND_ASSIGN(found, store_->Lookup("r", std::vector<DocumentKey>{{"c", "a"}}));
  EXPECT_FALSE(found[0]->deleted);
}

TEST_P(StoreConformance, DataSurvivesReopen) {
  ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "persisted"}, {"c", "b", "too", true}}));
  store_.reset();

  ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("r"));
  EXPECT_EQ(after.epoch, before.epoch);
  EXPECT_EQ(after.last_seq, 2);
  std::vector<StoredDocument> all = ReadAll("r");
  ASSERT_THAT(Summaries(all), ElementsAre("c/a@1", "c/b@2"));
  EXPECT_EQ(all[0].json, "persisted");
  EXPECT_TRUE(all[1].deleted);
  ASSERT_OK(CommitDocs("r", 2, {{"c", "c", "after reopen"}}));
}

TEST_P(StoreConformance, StoredBytesFollowCommitDeltas) {
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.stored_bytes, 0);
  // Insert two: 10 + 5 bytes.
  ASSERT_OK(CommitDocsWithDelta("r", 0, {{"c", "a", "0123456789"}, {"c", "b", "01234"}}, 15));
  EXPECT_EQ(StoredBytes("r"), 15);
  // Replace a by a larger document (10 -> 20 bytes).
  ASSERT_OK(CommitDocsWithDelta("r", 2, {{"c", "a", std::string(20, 'x')}}, 10));
  EXPECT_EQ(StoredBytes("r"), 25);
  // Replace b by a smaller one (5 -> 2 bytes).
  ASSERT_OK(CommitDocsWithDelta("r", 3, {{"c", "b", "ab"}}, -3));
  EXPECT_EQ(StoredBytes("r"), 22);
  // Tombstone a: its 20 bytes become the tombstone's 2.
  ASSERT_OK(CommitDocsWithDelta("r", 4, {{"c", "a", "{}", /*deleted=*/true}}, -18));
  EXPECT_EQ(StoredBytes("r"), 4);
  EXPECT_EQ(SumOfJsonSizes("r"), 4);
  // An empty commit with no delta changes nothing.
  ASSERT_OK(CommitDocsWithDelta("r", 5, {}, 0));
  EXPECT_EQ(StoredBytes("r"), 4);
  // Other rooms are untouched.
  EXPECT_EQ(StoredBytes("other"), 0);
}

TEST_P(StoreConformance, StaleFenceLeavesStoredBytesUnchanged) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocsWithDelta("r", 0, {{"c", "a", "12345"}}, 5));
  EXPECT_EQ(CommitDocsWithDelta("r", 0, {{"c", "b", std::string(100, 'x')}}, 100).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(CommitDocsWithDelta("r", 7, {}, 1000).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(CommitDocsWithDelta("never-opened", 0, {{"c", "a", "x"}}, 1).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(StoredBytes("r"), 5);
  // A malformed batch is rejected before anything is written.
  EXPECT_EQ(CommitDocsWithDelta("r", 1, {{"c", "\xff", "x"}}, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StoredBytes("r"), 5);
}

// The writer's way (delta from a Lookup under the fence, as CommitDocs
// does) keeps stored_bytes equal to the sum over the room's documents.
TEST_P(StoreConformance, StoredBytesMatchSumOfDocumentsAndSurviveReopen) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(store_->OpenRoom("s"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "alpha"}, {"c", "b", "beta"}, {"d", "a", "x"}}));
  ASSERT_OK(CommitDocs("s", 0, {{"c", "a", std::string(1000, 'y')}}));
  ASSERT_OK(CommitDocs("r", 3, {{"c", "a", std::string(300, 'z')}, {"c", "new", "n"}}));
  ASSERT_OK(CommitDocs("r", 5, {{"c", "b", "", /*deleted=*/true}, {"d", "a", "xy"}}));
  EXPECT_EQ(StoredBytes("r"), SumOfJsonSizes("r"));
  EXPECT_EQ(StoredBytes("r"), 300 + 0 + 2 + 1);
  EXPECT_EQ(StoredBytes("s"), 1000);

  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
  EXPECT_EQ(StoredBytes("r"), 303);
  EXPECT_EQ(StoredBytes("s"), 1000);
  ASSERT_OK(CommitDocs("r", 7, {{"c", "b", "back"}}));
  EXPECT_EQ(StoredBytes("r"), 307);
  EXPECT_EQ(StoredBytes("r"), SumOfJsonSizes("r"));
}

TEST(OpenStore, RejectsUnknownSchemes) {
  EXPECT_EQ(OpenStore("mysql://localhost/x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite:").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenStore, SqliteCreatesMissingParentDirectories) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore("sqlite:" + dir.path() + "/a/b/store.db");
  ASSERT_TRUE(store.ok()) << store.status();
}

TEST(OpenStore, UnreachablePostgresIsUnavailable) {
  // Port 1 on loopback: nothing listens there, so the connect is refused.
  EXPECT_EQ(OpenStore("postgresql://postgres@127.0.0.1:1/x?connect_timeout=2").status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace roomsync

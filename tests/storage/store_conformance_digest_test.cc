// Store conformance: the room digest (storage/document_digest.h) on both
// backends. Commit XORs in the writer's delta, ImportRoom and the schema
// migration compute it from the documents, compaction leaves it alone, and
// the figure DescribeRoom counts in SQL (PostgreSQL's sha256(), SQLite's
// registered function) agrees with the C++ one for every state.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "storage/document_digest.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

// Reference values from an independent implementation (Python's hashlib),
// which a client must reproduce bit for bit: clients/js/test has the same.
TEST(DocumentDigest, MatchesTheReferenceVectors) {
  EXPECT_EQ(FormatDigest(DocumentDigest(
                "messages", "msg-1", 1700000001000, false,
                R"({"id":"msg-1","timestamp":1700000001000,"iv":"AAAA","ciphertext":"BBBB"})")),
            "5561ff1588cca6d2");
  EXPECT_EQ(FormatDigest(DocumentDigest("c", "x", 1, false, "\xc3\xa9\xc3\xa9")), "b73b38f723e4e53e");
  EXPECT_EQ(FormatDigest(DocumentDigest("c", "a", -5, false, "{}")), "903fb928a2a2c5c6");
  EXPECT_EQ(DocumentDigest("c", "a", -5, /*deleted=*/true, "{}"), 0u);
  // Every field counts, and the lengths keep "ab"+"c" apart from "a"+"bc".
  EXPECT_NE(DocumentDigest("ab", "c", 1, false, "{}"), DocumentDigest("a", "bc", 1, false, "{}"));
  EXPECT_NE(DocumentDigest("c", "a", 1, false, "{}"), DocumentDigest("c", "a", 2, false, "{}"));
  EXPECT_NE(DocumentDigest("c", "a", 1, false, "{}"), DocumentDigest("c", "a", 1, false, "{ }"));
}

// The digest of what a full read returns, as a client computes it.
uint64_t DigestOfDocuments(Store& store, const std::string& room) {
  uint64_t digest = 0;
  Seq after = 0;
  while (true) {
    absl::StatusOr<std::vector<StoredDocument>> page = store.ReadSince(room, after, {"", 50});
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->empty()) return digest;
    for (const StoredDocument& doc : *page) digest ^= DocumentDigest(doc);
    after = page->back().seq;
  }
}

void ExpectDigestsAgree(Store& store, const std::string& room) {
  ASSERT_OK_AND_ASSIGN(RoomHead head, store.OpenRoom(room));
  EXPECT_EQ(FormatDigest(head.digest), FormatDigest(DigestOfDocuments(store, room)));
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> summary, store.DescribeRoom(room));
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(FormatDigest(summary->document_digest), FormatDigest(head.digest));
  EXPECT_EQ(FormatDigest(summary->head.digest), FormatDigest(head.digest));
}

TEST_P(StoreConformance, DigestFollowsInsertsUpdatesAndDeletes) {
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  EXPECT_EQ(head.digest, 0u);
  std::mt19937 random(7);
  Seq last = 0;
  for (int round = 0; round < 40; ++round) {
    std::vector<NewDoc> docs;
    const int n = 1 + static_cast<int>(random() % 4);
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      // Few ids, so that updates and deletes of stored keys are common;
      // distinct within a batch, as the store requires.
      std::string id = "d" + std::to_string(random() % 12);
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
      ids.push_back(id);
      const bool deleted = random() % 4 == 0;
      docs.push_back({random() % 3 == 0 ? "other" : "c", id,
                      R"({"v":")" + std::to_string(random()) + R"("})", deleted});
    }
    ASSERT_OK(CommitDocs("r", last, docs));
    last += static_cast<Seq>(docs.size());
    ExpectDigestsAgree(*store_, "r");
  }
  ASSERT_OK_AND_ASSIGN(head, store_->OpenRoom("r"));
  EXPECT_NE(head.digest, 0u);
  // A room's digest is its own.
  ASSERT_OK(store_->OpenRoom("empty"));
  ExpectDigestsAgree(*store_, "empty");
}

TEST_P(StoreConformance, StaleFenceLeavesTheDigestUnchanged) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "1"}}));
  ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom("r"));
  EXPECT_EQ(CommitDocsWithDelta("r", 0, {{"c", "b", "2"}}, 1, 0x1234).code(),
            absl::StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("r"));
  EXPECT_EQ(after.digest, before.digest);
  ExpectDigestsAgree(*store_, "r");
}

TEST_P(StoreConformance, CompactionLeavesTheDigest) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"m", "live", "aaaa"}, {"m", "dead", "bb", true}}));
  ASSERT_OK(CommitDocs("r", 2, {{"m", "gone", "x"}}));
  ASSERT_OK(CommitDocs("r", 3, {{"m", "gone", "{}", true}}));
  ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom("r"));
  EXPECT_EQ(before.digest, DocumentDigest("m", "live", 1000, false, "aaaa"));
  ASSERT_OK_AND_ASSIGN(CompactionResult result,
                       store_->CompactRoom("r", CommitFence{.expected_last_seq = 4}, 1'000'000));
  EXPECT_EQ(result.removed, 2);
  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("r"));
  EXPECT_EQ(after.digest, before.digest);
  ExpectDigestsAgree(*store_, "r");
}

TEST_P(StoreConformance, ImportComputesTheDigestFromTheDocuments) {
  std::vector<StoredDocument> docs = {
      {"c", "a", 5, false, 1, R"({"x":1})"},
      {"c", "b", 6, true, 2, "{}"},
      {"d", "a", 7, false, 4, R"({"y":"\u00e9"})"},
  };
  RoomHead head{"imported-epoch", 4, /*stored_bytes=*/999, 0, /*digest=*/0xdead};
  ASSERT_OK(store_->ImportRoom("r", head, docs));
  ASSERT_OK_AND_ASSIGN(RoomHead stored, store_->OpenRoom("r"));
  EXPECT_EQ(stored.digest, DocumentDigest(docs[0]) ^ DocumentDigest(docs[2]));
  ExpectDigestsAgree(*store_, "r");
}

}  // namespace
}  // namespace roomsync

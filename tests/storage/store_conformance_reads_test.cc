// Store conformance: keyset reads (ReadSince, ReadBefore) on both backends.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

std::string CollectionOf(int i) { return i % 3 == 0 ? "users" : "msgs"; }

// 20 documents in 4 batches of 5; every third is in "users".
void CommitTwentyDocs(Store& store) {
  ASSERT_OK(store.OpenRoom("r"));
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<NewDoc> docs;
    for (int i = batch * 5 + 1; i <= batch * 5 + 5; ++i) {
      docs.push_back({CollectionOf(i), "d" + std::to_string(i), "v" + std::to_string(i)});
    }
    ASSERT_OK(CommitDocs(store, "r", batch * 5, docs));
  }
}

std::vector<Seq> Seqs(const std::vector<StoredDocument>& docs) {
  std::vector<Seq> seqs;
  for (const StoredDocument& d : docs) seqs.push_back(d.seq);
  return seqs;
}

// Pages through ReadSince (ascending) or ReadBefore (descending) with
// `limit`, checking every page's size and order, and returns all seqs.
std::vector<Seq> PageThrough(Store& store, bool ascending, std::string_view collection,
                             int limit) {
  std::vector<Seq> seen;
  Seq cursor = 0;
  for (int pages = 0; pages < 100; ++pages) {
    absl::StatusOr<std::vector<StoredDocument>> page =
        ascending ? store.ReadSince("r", cursor, ReadRange{collection, limit})
                  : store.ReadBefore("r", cursor, ReadRange{collection, limit});
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->empty()) break;
    EXPECT_LE(page->size(), static_cast<size_t>(limit));
    for (const StoredDocument& d : *page) {
      if (!collection.empty()) {
        EXPECT_EQ(d.collection, collection);
      }
      if (!seen.empty()) {
        EXPECT_EQ(ascending, d.seq > seen.back()) << d.seq;
      }
      seen.push_back(d.seq);
    }
    cursor = page->back().seq;
  }
  return seen;
}

TEST_P(StoreConformance, ReadSincePagesAcrossBatchBoundaries) {
  CommitTwentyDocs(*store_);
  std::vector<Seq> all, users;
  for (int i = 1; i <= 20; ++i) {
    all.push_back(i);
    if (CollectionOf(i) == "users") users.push_back(i);
  }
  EXPECT_THAT(PageThrough(*store_, true, "", 3), ElementsAreArray(all));
  EXPECT_THAT(PageThrough(*store_, true, "users", 2), ElementsAreArray(users));
  EXPECT_THAT(PageThrough(*store_, true, "none", 2), IsEmpty());
  // A page starting mid-batch holds exactly the rows after the cursor.
  ASSERT_OK_AND_ASSIGN(auto page, store_->ReadSince("r", 7, ReadRange{"", 4}));
  EXPECT_THAT(Seqs(page), ElementsAre(8, 9, 10, 11));
  ASSERT_OK_AND_ASSIGN(page, store_->ReadSince("r", 20, ReadRange{"", 4}));
  EXPECT_THAT(page, IsEmpty());
  ASSERT_OK_AND_ASSIGN(page, store_->ReadSince("r", 0, ReadRange{"msgs", 3}));
  EXPECT_THAT(Seqs(page), ElementsAre(1, 2, 4));
  EXPECT_EQ(page[2].json, "v4");
}

TEST_P(StoreConformance, ReadSinceSeesChangesInterleavedBetweenPages) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "a1"}, {"c", "b", "b1"}, {"c", "c", "c1"},
                                {"c", "d", "d1"}, {"c", "e", "e1"}}));
  // A client pulls a page, the room changes, the client pulls on.
  std::map<std::string, std::string> replica;
  ASSERT_OK_AND_ASSIGN(auto page, store_->ReadSince("r", 0, ReadRange{"", 3}));
  EXPECT_THAT(Seqs(page), ElementsAre(1, 2, 3));
  for (const auto& d : page) replica[d.id] = d.json;
  Seq checkpoint = page.back().seq;

  // b (already pulled) and e (not yet pulled) change; f is new.
  ASSERT_OK(CommitDocs("r", 5, {{"c", "b", "b2"}, {"c", "e", "e2"}, {"c", "f", "f1"}}));

  std::vector<std::string> later;
  while (true) {
    ASSERT_OK_AND_ASSIGN(page, store_->ReadSince("r", checkpoint, ReadRange{"", 3}));
    if (page.empty()) break;
    for (const auto& d : page) {
      replica[d.id] = d.json;
      later.push_back(d.id + "@" + std::to_string(d.seq));
    }
    checkpoint = page.back().seq;
  }
  // e's old state at seq 5 is gone: each document once, at its newest seq.
  EXPECT_THAT(later, ElementsAre("d@4", "b@6", "e@7", "f@8"));
  EXPECT_EQ(checkpoint, 8);
  std::map<std::string, std::string> expected = {
      {"a", "a1"}, {"b", "b2"}, {"c", "c1"}, {"d", "d1"}, {"e", "e2"}, {"f", "f1"}};
  EXPECT_EQ(replica, expected);
}

TEST_P(StoreConformance, ReadBeforePagesNewestFirst) {
  CommitTwentyDocs(*store_);
  std::vector<Seq> all, msgs;
  for (int i = 20; i >= 1; --i) {
    all.push_back(i);
    if (CollectionOf(i) == "msgs") msgs.push_back(i);
  }
  EXPECT_THAT(PageThrough(*store_, false, "", 4), ElementsAreArray(all));
  EXPECT_THAT(PageThrough(*store_, false, "msgs", 5), ElementsAreArray(msgs));
  ASSERT_OK_AND_ASSIGN(auto page, store_->ReadBefore("r", 0, ReadRange{"", 3}));
  EXPECT_THAT(Seqs(page), ElementsAre(20, 19, 18));
  ASSERT_OK_AND_ASSIGN(page, store_->ReadBefore("r", -5, ReadRange{"users", 2}));
  EXPECT_THAT(Seqs(page), ElementsAre(18, 15));
  ASSERT_OK_AND_ASSIGN(page, store_->ReadBefore("r", 12, ReadRange{"", 100}));
  EXPECT_EQ(page.size(), 11u);
  EXPECT_EQ(page.front().seq, 11);
  ASSERT_OK_AND_ASSIGN(page, store_->ReadBefore("r", 1, ReadRange{"", 3}));
  EXPECT_THAT(page, IsEmpty());
}

TEST_P(StoreConformance, ReadsSeeOnlyTheirRoom) {
  ASSERT_OK(store_->OpenRoom("r1"));
  ASSERT_OK(store_->OpenRoom("r2"));
  ASSERT_OK(CommitDocs("r1", 0, {{"c", "a", "one"}}));
  ASSERT_OK(CommitDocs("r2", 0, {{"c", "a", "two"}, {"c", "b", "two"}}));
  std::vector<StoredDocument> r1 = ReadAll("r1");
  ASSERT_EQ(r1.size(), 1u);
  EXPECT_EQ(r1[0].json, "one");
  ASSERT_OK_AND_ASSIGN(auto newest, store_->ReadBefore("r2", 0, ReadRange{"", 10}));
  EXPECT_THAT(Seqs(newest), ElementsAre(2, 1));
  EXPECT_THAT(ReadAll("empty-room"), IsEmpty());
}

}  // namespace
}  // namespace roomsync

// The Store conformance suite's fixture: every TEST_P in
// store_conformance_*.cc runs once per backend (see the INSTANTIATE in
// store_conformance_test.cc), each test on a fresh, empty database.
#ifndef ROOMSYNC_TESTS_STORAGE_STORE_CONFORMANCE_H_
#define ROOMSYNC_TESTS_STORAGE_STORE_CONFORMANCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "storage/document_digest.h"
#include "storage/store.h"

namespace roomsync {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define ASSERT_OK(expr)                                \
  do {                                                 \
    const absl::Status _status = ::roomsync::StatusOf(expr); \
    ASSERT_TRUE(_status.ok()) << _status;              \
  } while (0)

#define RS_CONCAT_INNER(a, b) a##b
#define RS_CONCAT(a, b) RS_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(RS_CONCAT(_status_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  ASSERT_TRUE(tmp.ok()) << tmp.status();          \
  lhs = std::move(*tmp)

// Which backend a test instance runs against. `new_url` makes a fresh,
// empty database and returns its store URL.
struct Backend {
  std::string name;
  std::string (*new_url)();
};

// Names the backend in test output instead of gtest's byte dump.
inline void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

// One document to commit; its seq is assigned by CommitDocs.
struct NewDoc {
  std::string collection;
  std::string id;
  std::string json;
  bool deleted = false;
};

// `docs` as a batch with seqs expected_last_seq + 1, + 2, ... and
// timestamp_ms = 1000 * seq.
inline std::vector<StoredDocument> Batch(Seq expected_last_seq,
                                         const std::vector<NewDoc>& docs) {
  std::vector<StoredDocument> batch;
  Seq seq = expected_last_seq;
  for (const NewDoc& d : docs) {
    ++seq;
    batch.push_back(StoredDocument{d.collection, d.id, 1000 * seq, d.deleted, seq, d.json});
  }
  return batch;
}

// Commits Batch(expected_last_seq, docs) with the given deltas.
inline absl::Status CommitDocsWithDelta(Store& store, const std::string& room,
                                        Seq expected_last_seq, const std::vector<NewDoc>& docs,
                                        int64_t stored_bytes_delta, uint64_t digest_delta = 0) {
  return store.Commit(room, CommitFence{expected_last_seq}, Batch(expected_last_seq, docs),
                      stored_bytes_delta, digest_delta);
}

// Commits Batch(expected_last_seq, docs) as a writer does: the
// stored_bytes_delta and digest_delta come from a Lookup of the batch's
// keys (made before the commit; the fence makes them exact if the commit
// succeeds).
inline absl::Status CommitDocs(Store& store, const std::string& room, Seq expected_last_seq,
                               const std::vector<NewDoc>& docs) {
  std::vector<DocumentKey> keys;
  int64_t delta = 0;
  for (const NewDoc& d : docs) {
    keys.push_back(DocumentKey{d.collection, d.id});
    delta += static_cast<int64_t>(d.json.size());
  }
  absl::StatusOr<std::vector<std::optional<StoredDocument>>> found = store.Lookup(room, keys);
  if (!found.ok()) return found.status();
  uint64_t digest_delta = 0;
  for (const std::optional<StoredDocument>& old : *found) {
    if (!old.has_value()) continue;
    delta -= static_cast<int64_t>(old->json.size());
    digest_delta ^= DocumentDigest(*old);
  }
  for (const StoredDocument& doc : Batch(expected_last_seq, docs)) {
    digest_delta ^= DocumentDigest(doc);
  }
  return CommitDocsWithDelta(store, room, expected_last_seq, docs, delta, digest_delta);
}

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    url_ = GetParam().new_url();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::Status CommitDocs(const std::string& room, Seq expected_last_seq,
                          const std::vector<NewDoc>& docs) {
    return ::roomsync::CommitDocs(*store_, room, expected_last_seq, docs);
  }
  absl::Status CommitDocsWithDelta(const std::string& room, Seq expected_last_seq,
                                   const std::vector<NewDoc>& docs, int64_t delta,
                                   uint64_t digest_delta = 0) {
    return ::roomsync::CommitDocsWithDelta(*store_, room, expected_last_seq, docs, delta,
                                           digest_delta);
  }

  // The room's stored_bytes as OpenRoom reports it; -1 on error.
  int64_t StoredBytes(const std::string& room) {
    absl::StatusOr<RoomHead> head = store_->OpenRoom(room);
    EXPECT_TRUE(head.ok()) << head.status();
    return head.ok() ? head->stored_bytes : -1;
  }

  // The sum of the json sizes of the room's documents, read back.
  int64_t SumOfJsonSizes(const std::string& room) {
    int64_t sum = 0;
    for (const StoredDocument& d : ReadAll(room)) sum += static_cast<int64_t>(d.json.size());
    return sum;
  }

  // Every document of the room, ascending, read in pages of `limit`.
  std::vector<StoredDocument> ReadAll(const std::string& room, std::string_view collection = "",
                                      int limit = 1000) {
    std::vector<StoredDocument> all;
    Seq after = 0;
    while (true) {
      absl::StatusOr<std::vector<StoredDocument>> page =
          store_->ReadSince(room, after, ReadRange{collection, limit});
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) return all;
      after = page->back().seq;
      for (StoredDocument& d : *page) all.push_back(std::move(d));
    }
  }

  std::string url_;
  std::unique_ptr<Store> store_;
};

// "collection/id@seq" for each document: readable failure messages.
inline std::vector<std::string> Summaries(const std::vector<StoredDocument>& docs) {
  std::vector<std::string> out;
  for (const StoredDocument& d : docs) {
    out.push_back(d.collection + "/" + d.id + "@" + std::to_string(d.seq));
  }
  return out;
}

}  // namespace roomsync

#endif  // ROOMSYNC_TESTS_STORAGE_STORE_CONFORMANCE_H_

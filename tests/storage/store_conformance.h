// The Store conformance suite's fixture: every TEST_P in
// store_conformance_*.cc runs once per backend (see the INSTANTIATE in
// store_conformance_test.cc), each test on a fresh, empty database.
#ifndef ROOMSYNC_TESTS_STORAGE_STORE_CONFORMANCE_H_
#define ROOMSYNC_TESTS_STORAGE_STORE_CONFORMANCE_H_

#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
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

// Commits `docs` with seqs expected_last_seq + 1, + 2, ... and
// timestamp_ms = 1000 * seq.
inline absl::Status CommitDocs(Store& store, const std::string& room, Seq expected_last_seq,
                               const std::vector<NewDoc>& docs) {
  std::vector<StoredDocument> batch;
  Seq seq = expected_last_seq;
  for (const NewDoc& d : docs) {
    ++seq;
    batch.push_back(StoredDocument{d.collection, d.id, 1000 * seq, d.deleted, seq, d.json});
  }
  return store.Commit(room, CommitFence{expected_last_seq}, batch);
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

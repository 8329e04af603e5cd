// SQLite's cross-room group commit (storage/sqlite_commit_group.h), driven
// directly so that a group's make-up is known rather than left to timing:
// CommitSqliteGroup on a hand-built group, and the queue's leader election.
// The suite is named SqliteStore* so that `ctest -R Store` runs it.
#include "storage/sqlite_commit_group.h"

#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "storage/sqlite_db.h"
#include "tests/storage/store_conformance.h"
#include "tests/support/temp_dir.h"

namespace roomsync {
namespace {

using storage_internal::CommitSqliteGroup;
using storage_internal::CommitRequest;
using storage_internal::SqliteDb;

StoredDocument Doc(const std::string& id, Seq seq, const std::string& json = "x") {
  return StoredDocument{"c", id, 1000 * seq, false, seq, json};
}

class SqliteStoreGroupCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempSqlitePath();
    // The store creates the schema; the group runs on a second connection
    // to the same file, as the store's writer would.
    ASSERT_OK_AND_ASSIGN(store_, OpenStore("sqlite:" + path_));
    ASSERT_OK_AND_ASSIGN(db_, SqliteDb::Open(path_, /*create=*/false));
  }

  std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<SqliteDb> db_;
};

TEST_F(SqliteStoreGroupCommit, FailedFenceUndoesOnlyThatRequest) {
  for (const char* room : {"a", "b", "c"}) ASSERT_OK(store_->OpenRoom(room));
  const std::vector<StoredDocument> a = {Doc("a1", 1), Doc("a2", 2)};
  const std::vector<StoredDocument> b = {Doc("b1", 6)};  // fence 5: stale
  const std::vector<StoredDocument> c = {Doc("c1", 1)};
  CommitRequest ra("a", CommitFence{0}, a, 7, 0);
  CommitRequest rb("b", CommitFence{5}, b, 100, 0);
  CommitRequest rc("c", CommitFence{0}, c, 3, 0);
  CommitRequest* group[] = {&ra, &rb, &rc};
  CommitSqliteGroup(*db_, group);
  EXPECT_TRUE(ra.result.ok()) << ra.result;
  EXPECT_EQ(rb.result.code(), absl::StatusCode::kAborted) << rb.result;
  EXPECT_TRUE(rc.result.ok()) << rc.result;
  EXPECT_FALSE(db_->InTransaction());

  ASSERT_OK_AND_ASSIGN(RoomHead head_a, store_->OpenRoom("a"));
  ASSERT_OK_AND_ASSIGN(RoomHead head_b, store_->OpenRoom("b"));
  ASSERT_OK_AND_ASSIGN(RoomHead head_c, store_->OpenRoom("c"));
  EXPECT_EQ(head_a.last_seq, 2);
  EXPECT_EQ(head_b.last_seq, 0);
  EXPECT_EQ(head_c.last_seq, 1);
  // stored_bytes moves with the fence: the aborted request's delta is undone.
  EXPECT_EQ(head_a.stored_bytes, 7);
  EXPECT_EQ(head_b.stored_bytes, 0);
  EXPECT_EQ(head_c.stored_bytes, 3);
  EXPECT_THAT(Summaries(*store_->ReadSince("a", 0, ReadRange{})),
              ::testing::ElementsAre("c/a1@1", "c/a2@2"));
  EXPECT_THAT(*store_->ReadSince("b", 0, ReadRange{}), ::testing::IsEmpty());
  EXPECT_THAT(Summaries(*store_->ReadSince("c", 0, ReadRange{})),
              ::testing::ElementsAre("c/c1@1"));
}

TEST_F(SqliteStoreGroupCommit, UnopenedRoomAbortsAlone) {
  ASSERT_OK(store_->OpenRoom("a"));
  const std::vector<StoredDocument> docs = {Doc("d", 1)};
  CommitRequest missing("never-opened", CommitFence{0}, docs, 0, 0);
  CommitRequest ok("a", CommitFence{0}, docs, 0, 0);
  CommitRequest* group[] = {&missing, &ok};
  CommitSqliteGroup(*db_, group);
  EXPECT_EQ(missing.result.code(), absl::StatusCode::kAborted) << missing.result;
  EXPECT_TRUE(ok.result.ok()) << ok.result;
  EXPECT_THAT(Summaries(*store_->ReadSince("a", 0, ReadRange{})),
              ::testing::ElementsAre("c/d@1"));
}

// Requests of one room in one group see each other's writes: the group
// behaves as the requests committed one by one in order.
TEST_F(SqliteStoreGroupCommit, SameRoomTwiceBehavesAsInSequence) {
  ASSERT_OK(store_->OpenRoom("r"));
  const std::vector<StoredDocument> first = {Doc("x", 1, "first")};
  const std::vector<StoredDocument> second = {Doc("x", 2, "second")};
  const std::vector<StoredDocument> same_fence = {Doc("y", 2)};
  CommitRequest r1("r", CommitFence{0}, first, 0, 0);
  CommitRequest r2("r", CommitFence{1}, second, 0, 0);
  CommitRequest r3("r", CommitFence{1}, same_fence, 0, 0);  // 1 is stale by now
  CommitRequest* group[] = {&r1, &r2, &r3};
  CommitSqliteGroup(*db_, group);
  EXPECT_TRUE(r1.result.ok()) << r1.result;
  EXPECT_TRUE(r2.result.ok()) << r2.result;
  EXPECT_EQ(r3.result.code(), absl::StatusCode::kAborted) << r3.result;
  std::vector<StoredDocument> all = *store_->ReadSince("r", 0, ReadRange{});
  EXPECT_THAT(Summaries(all), ::testing::ElementsAre("c/x@2"));
  EXPECT_EQ(all[0].json, "second");
}

// BEGIN refused (another connection holds the write lock): every request
// gets the error and nothing is written.
TEST_F(SqliteStoreGroupCommit, BeginFailureFailsEveryRequest) {
  ASSERT_OK(store_->OpenRoom("a"));
  ASSERT_OK(db_->Exec("PRAGMA busy_timeout=0"));  // fail at once, not in 10 s
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDb> locker, SqliteDb::Open(path_, false));
  ASSERT_OK(locker->Exec("BEGIN IMMEDIATE"));
  const std::vector<StoredDocument> docs = {Doc("d", 1)};
  CommitRequest r1("a", CommitFence{0}, docs, 0, 0);
  CommitRequest r2("a", CommitFence{0}, docs, 0, 0);
  CommitRequest* group[] = {&r1, &r2};
  CommitSqliteGroup(*db_, group);
  EXPECT_EQ(r1.result.code(), absl::StatusCode::kUnavailable) << r1.result;
  EXPECT_EQ(r2.result.code(), absl::StatusCode::kUnavailable) << r2.result;
  ASSERT_OK(locker->Exec("ROLLBACK"));
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("a"));
  EXPECT_EQ(head.last_seq, 0);
}

}  // namespace
}  // namespace roomsync

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
using storage_internal::SqliteCommitQueue;
using storage_internal::SqliteCommitRequest;
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
  SqliteCommitRequest ra("a", CommitFence{0}, a, 7);
  SqliteCommitRequest rb("b", CommitFence{5}, b, 100);
  SqliteCommitRequest rc("c", CommitFence{0}, c, 3);
  SqliteCommitRequest* group[] = {&ra, &rb, &rc};
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
  SqliteCommitRequest missing("never-opened", CommitFence{0}, docs, 0);
  SqliteCommitRequest ok("a", CommitFence{0}, docs, 0);
  SqliteCommitRequest* group[] = {&missing, &ok};
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
  SqliteCommitRequest r1("r", CommitFence{0}, first, 0);
  SqliteCommitRequest r2("r", CommitFence{1}, second, 0);
  SqliteCommitRequest r3("r", CommitFence{1}, same_fence, 0);  // 1 is stale by now
  SqliteCommitRequest* group[] = {&r1, &r2, &r3};
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
  SqliteCommitRequest r1("a", CommitFence{0}, docs, 0);
  SqliteCommitRequest r2("a", CommitFence{0}, docs, 0);
  SqliteCommitRequest* group[] = {&r1, &r2};
  CommitSqliteGroup(*db_, group);
  EXPECT_EQ(r1.result.code(), absl::StatusCode::kUnavailable) << r1.result;
  EXPECT_EQ(r2.result.code(), absl::StatusCode::kUnavailable) << r2.result;
  ASSERT_OK(locker->Exec("ROLLBACK"));
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("a"));
  EXPECT_EQ(head.last_seq, 0);
}

// The queue: concurrent submitters form groups, within the bounds, and
// each request is run exactly once and gets its own result.
TEST(SqliteStoreCommitQueue, ConcurrentSubmittersShareGroupsWithinBounds) {
  constexpr int kThreads = 100;  // more than one group's worth
  SqliteCommitQueue queue;
  std::atomic<int> groups{0}, requests_run{0}, largest{0}, oversized{0};
  std::latch start(kThreads);
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  const std::string room_prefix = "r";
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string room = room_prefix + std::to_string(t);
      SqliteCommitRequest request(room, CommitFence{t}, {}, 0);
      start.arrive_and_wait();
      results[t] = queue.Submit(request, [&](std::span<SqliteCommitRequest* const> group) {
        // Slow, like a fsync, so that the others queue up meanwhile.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ++groups;
        requests_run += static_cast<int>(group.size());
        if (group.size() > SqliteCommitQueue::kMaxGroupRequests) ++oversized;
        int size = static_cast<int>(group.size());
        for (int seen = largest.load(); size > seen && !largest.compare_exchange_weak(seen, size);) {
        }
        // Each request's own result, to check it reaches its own caller.
        for (SqliteCommitRequest* r : group) {
          r->result = absl::InternalError(std::to_string(r->fence.expected_last_seq));
        }
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(oversized.load(), 0);
  EXPECT_GT(largest.load(), 1) << "no group had more than one request";
  EXPECT_LT(groups.load(), kThreads);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(results[t].message(), std::to_string(t));
}

// Large commits: a group stops before it would pass kMaxGroupBytes (but a
// single request larger than that still runs, alone).
TEST(SqliteStoreCommitQueue, GroupsStayWithinTheByteBound) {
  constexpr int kThreads = 8;
  const std::vector<StoredDocument> big = {Doc("big", 1, std::string(6 << 20, 'x'))};
  SqliteCommitQueue queue;
  std::atomic<int> requests_run{0}, oversized{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      SqliteCommitRequest request("r", CommitFence{0}, big, 0);
      start.arrive_and_wait();
      absl::Status s = queue.Submit(request, [&](std::span<SqliteCommitRequest* const> group) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        size_t bytes = 0;
        for (SqliteCommitRequest* r : group) bytes += r->bytes;
        if (group.size() > 1 && bytes > SqliteCommitQueue::kMaxGroupBytes) ++oversized;
        requests_run += static_cast<int>(group.size());
        for (SqliteCommitRequest* r : group) r->result = absl::OkStatus();
      });
      EXPECT_TRUE(s.ok()) << s;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(oversized.load(), 0);
}

}  // namespace
}  // namespace roomsync

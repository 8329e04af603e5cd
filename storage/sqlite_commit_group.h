// Cross-room group commit for SqliteStore (LevelDB's write group, at the
// store level).
//
// Why: a durable SQLite commit costs one fsync (milliseconds), and SQLite
// has one writer per file. Committing each room's batch in its own
// transaction caps a node at ~1/fsync commits per second over ALL rooms,
// however many rooms push at once. The room service already folds the
// pushes of one room into one Commit; this folds the Commits of different
// rooms that arrive together into one transaction, so they share a fsync.
//
// How: every Commit enqueues a request and waits. The oldest waiting
// request whose thread finds no group running becomes the leader: it takes
// the queue's head (bounded in requests and bytes), commits it as one
// transaction with a SAVEPOINT per request (so one room's failed fence
// undoes only that room's writes), and hands each request its result.
// Requests that arrive meanwhile wait for the next group. The outcome is
// the same as committing the requests one by one in queue order.
#ifndef ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_
#define ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/sqlite_db.h"
#include "storage/store.h"

namespace roomsync::storage_internal {

// One Store::Commit call waiting in (or being committed by) a group. Lives
// on the caller's stack; the views stay valid while the caller waits.
struct SqliteCommitRequest {
  SqliteCommitRequest(std::string_view room, const CommitFence& fence,
                      std::span<const StoredDocument> documents,
                      int64_t stored_bytes_delta);

  std::string_view room;
  CommitFence fence;
  std::span<const StoredDocument> documents;
  int64_t stored_bytes_delta;  // added to rooms.stored_bytes (store.h)
  size_t bytes;          // what the request adds to a group's size bound
  absl::Status result;   // written by the leader before `done`
  bool done = false;     // guarded by the queue's mutex
};

// Commits `group` in ONE transaction on `db` (which the caller holds
// exclusively) and sets every request's `result`, as if each had been
// committed alone in order: a request whose fence fails gets kAborted and
// writes nothing, the others are unaffected. If BEGIN or COMMIT fails, every
// request that would have written gets that error, kUnknown when COMMIT
// failed part-way (its frames may or may not be durable).
void CommitSqliteGroup(SqliteDb& db, std::span<SqliteCommitRequest* const> group);

// The queue of waiting requests and the leader election.
class SqliteCommitQueue {
 public:
  // Bounds of one group: enough to batch every store thread's commit (the
  // room service runs 32 by default), small enough that one transaction's
  // WAL frames and its followers' wait stay modest.
  static constexpr size_t kMaxGroupRequests = 64;
  static constexpr size_t kMaxGroupBytes = 16 << 20;

  using RunGroup = absl::FunctionRef<void(std::span<SqliteCommitRequest* const>)>;

  // Queues `request` and returns its result once a group containing it has
  // run. If this thread becomes the leader, it calls `run` for the group
  // (outside the queue's lock); `run` must set every request's result.
  absl::Status Submit(SqliteCommitRequest& request, RunGroup run);

 private:
  struct Waiter;
  static bool CanProceed(Waiter* waiter);

  absl::Mutex mu_;
  std::deque<SqliteCommitRequest*> pending_ ABSL_GUARDED_BY(mu_);
  // A leader is running a group: newcomers wait for the next one, so that
  // they gather into it instead of each racing for the writer alone.
  bool group_running_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_

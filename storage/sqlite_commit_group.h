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
// How: Commit calls gather in a GroupQueue (storage/group_queue.h); the
// leader commits its group as one transaction with a SAVEPOINT per request
// (so one room's failed fence undoes only that room's writes). The outcome
// is the same as committing the requests one by one in queue order.
#ifndef ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_
#define ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_

#include <span>

#include "storage/commit_request.h"
#include "storage/group_queue.h"
#include "storage/sqlite_db.h"
#include "storage/store.h"

namespace roomsync::storage_internal {

// Commits `group` in ONE transaction on `db` (which the caller holds
// exclusively) and sets every request's `result`, as if each had been
// committed alone in order: a request whose fence fails gets kAborted and
// writes nothing, the others are unaffected. If BEGIN or COMMIT fails, every
// request that would have written gets that error, kUnknown when COMMIT
// failed part-way (its frames may or may not be durable).
void CommitSqliteGroup(SqliteDb& db, std::span<CommitRequest* const> group);

// Bounds of one SQLite group: enough to batch every store thread's commit
// (the room service runs 32 by default), small enough that one
// transaction's WAL frames and its followers' wait stay modest; one writer.
inline constexpr GroupLimits kSqliteCommitGroupLimits{
    .max_requests = 64, .max_bytes = 16 << 20, .max_running_groups = 1,
    .distinct_rooms = false};
using SqliteCommitQueue = GroupQueue<CommitRequest>;

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_SQLITE_COMMIT_GROUP_H_

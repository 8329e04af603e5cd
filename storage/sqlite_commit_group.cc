#include "storage/sqlite_commit_group.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace roomsync::storage_internal {
namespace {

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

constexpr const char* kSelectLastSeq = "SELECT last_seq FROM rooms WHERE room = ?1";
constexpr const char* kUpsert =
    "INSERT INTO documents (room, collection, id, seq, timestamp_ms, deleted, json) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (room, collection, id) DO UPDATE SET seq = excluded.seq, "
    "timestamp_ms = excluded.timestamp_ms, deleted = excluded.deleted, "
    "json = excluded.json";
constexpr const char* kSelectLeaseEpoch = "SELECT epoch FROM shard_leases WHERE shard = ?1";
constexpr const char* kKeyStored =
    "SELECT 1 FROM documents WHERE room = ?1 AND collection = ?2 AND id = ?3";
constexpr const char* kSetLastSeq =
    "UPDATE rooms SET last_seq = ?2, stored_bytes = stored_bytes + ?3,"
    // SQLite has no XOR operator; (a | b) - (a & b) is a ^ b, exactly: the
    // two operands share no bit, so the subtraction never overflows.
    " digest = (digest | ?4) - (digest & ?4) WHERE room = ?1";

constexpr const char* kSelectHead =
    "SELECT epoch, last_seq, stored_bytes, compacted_through, digest FROM rooms WHERE room = ?1";
constexpr const char* kCreateRoom = "INSERT INTO rooms (room, epoch, last_seq) VALUES (?1, ?2, 0)";

// CreateRoomAndCommit's first step: the head of the room if it exists
// (then nothing is written), else the room, created empty with the
// request's epoch, for the writes that follow.
absl::StatusOr<std::optional<RoomHead>> ExistingOrCreated(SqliteDb& db,
                                                          const CommitRequest& request) {
  absl::StatusOr<SqliteStatement> select = db.Prepare(kSelectHead);
  if (!select.ok()) return select.status();
  RETURN_IF_ERROR(select->BindText(1, request.room));
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    return RoomHead{select->ColumnString(0), select->ColumnInt64(1), select->ColumnInt64(2),
                    select->ColumnInt64(3), static_cast<uint64_t>(select->ColumnInt64(4))};
  }
  absl::StatusOr<SqliteStatement> insert = db.Prepare(kCreateRoom);
  if (!insert.ok()) return insert.status();
  RETURN_IF_ERROR(insert->BindText(1, request.room));
  RETURN_IF_ERROR(insert->BindText(2, request.create_epoch));
  absl::StatusOr<bool> done = insert->Step();
  if (!done.ok()) return done.status();
  return std::optional<RoomHead>();
}

// One request's fence check and writes (documents, last_seq and
// stored_bytes), inside the group's transaction and the request's
// savepoint: a failed fence or write leaves all of them unchanged.
absl::Status WriteRequest(SqliteDb& db, CommitRequest& request) {
  if (request.fence.lease_epoch != 0) {
    absl::StatusOr<SqliteStatement> lease = db.Prepare(kSelectLeaseEpoch);
    if (!lease.ok()) return lease.status();
    RETURN_IF_ERROR(lease->BindInt64(1, request.fence.shard));
    absl::StatusOr<bool> row = lease->Step();
    if (!row.ok()) return row.status();
    if (!*row || lease->ColumnInt64(0) != request.fence.lease_epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("shard ", request.fence.shard, " lease epoch ",
                       request.fence.lease_epoch, " was taken by another node"));
    }
  }
  if (!request.create_epoch.empty()) {
    absl::StatusOr<std::optional<RoomHead>> existing = ExistingOrCreated(db, request);
    if (!existing.ok()) return existing.status();
    request.existing = *std::move(existing);
    if (request.existing.has_value()) return absl::OkStatus();
  }
  {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kSelectLastSeq);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, request.room));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    // A missing room is a stale view too: the writer must OpenRoom again.
    // Earlier requests of the group are visible here, so two commits of
    // one room in one group behave as they would one after the other.
    if (!*row || select->ColumnInt64(0) != request.fence.expected_last_seq) {
      return absl::AbortedError("room's last_seq moved past the commit fence");
    }
  }
  if (request.fence.keys_are_new) {
    // The writer skipped its Lookup (store.h, CommitFence). A primary-key
    // probe in this process costs microseconds, so check every key before
    // writing rather than turn a failed INSERT into an error.
    for (const StoredDocument& doc : request.documents) {
      absl::StatusOr<SqliteStatement> probe = db.Prepare(kKeyStored);
      if (!probe.ok()) return probe.status();
      RETURN_IF_ERROR(probe->BindText(1, request.room));
      RETURN_IF_ERROR(probe->BindText(2, doc.collection));
      RETURN_IF_ERROR(probe->BindText(3, doc.id));
      absl::StatusOr<bool> stored = probe->Step();
      if (!stored.ok()) return stored.status();
      if (*stored) return absl::AlreadyExistsError("a document's key is already stored");
    }
  }
  for (const StoredDocument& doc : request.documents) {
    absl::StatusOr<SqliteStatement> upsert = db.Prepare(kUpsert);
    if (!upsert.ok()) return upsert.status();
    RETURN_IF_ERROR(upsert->BindText(1, request.room));
    RETURN_IF_ERROR(upsert->BindText(2, doc.collection));
    RETURN_IF_ERROR(upsert->BindText(3, doc.id));
    RETURN_IF_ERROR(upsert->BindInt64(4, doc.seq));
    RETURN_IF_ERROR(upsert->BindInt64(5, doc.timestamp_ms));
    RETURN_IF_ERROR(upsert->BindInt64(6, doc.deleted ? 1 : 0));
    RETURN_IF_ERROR(upsert->BindBlob(7, doc.json));
    absl::StatusOr<bool> done = upsert->Step();
    if (!done.ok()) return done.status();
  }
  if (request.documents.empty() && request.stored_bytes_delta == 0 &&
      request.digest_delta == 0) {
    return absl::OkStatus();
  }
  absl::StatusOr<SqliteStatement> update = db.Prepare(kSetLastSeq);
  if (!update.ok()) return update.status();
  RETURN_IF_ERROR(update->BindText(1, request.room));
  RETURN_IF_ERROR(update->BindInt64(2, request.documents.empty()
                                           ? request.fence.expected_last_seq
                                           : request.documents.back().seq));
  RETURN_IF_ERROR(update->BindInt64(3, request.stored_bytes_delta));
  RETURN_IF_ERROR(update->BindInt64(4, static_cast<int64_t>(request.digest_delta)));
  absl::StatusOr<bool> done = update->Step();
  return done.status();
}

// Every request of `group` still headed for COMMIT (result OK so far)
// gets `status`; requests that already failed keep their own error, which
// stays true: their writes were undone before the transaction ended.
void FailPending(std::span<CommitRequest* const> group, const absl::Status& status) {
  for (CommitRequest* request : group) {
    if (request->result.ok()) request->result = status;
  }
}

}  // namespace

void CommitSqliteGroup(SqliteDb& db, std::span<CommitRequest* const> group) {
  for (CommitRequest* request : group) request->result = absl::OkStatus();
  // IMMEDIATE takes the file's write lock now, so no other process can
  // commit between our fence checks and our writes.
  if (absl::Status begun = db.Exec("BEGIN IMMEDIATE"); !begun.ok()) {
    FailPending(group, begun);
    return;
  }
  for (CommitRequest* request : group) {
    absl::Status status = db.Exec("SAVEPOINT request");
    if (status.ok()) status = WriteRequest(db, *request);
    if (status.ok()) status = db.Exec("RELEASE request");
    if (status.ok()) continue;
    // Undo this request's writes alone; the rest of the group goes on.
    if (db.InTransaction() && db.Exec("ROLLBACK TO request; RELEASE request").ok()) {
      request->result = status;
      continue;
    }
    // SQLite rolled back the whole transaction (it does on some I/O,
    // disk-full and out-of-memory errors), or the savepoint cannot be
    // undone: nothing of the group is written.
    if (db.InTransaction()) (void)db.Exec("ROLLBACK");
    request->result = status;
    FailPending(group, absl::UnavailableError(absl::StrCat(
                           "commit group rolled back after another room's error: ",
                           status.message())));
    return;
  }
  absl::Status committed = db.Exec("COMMIT");
  if (committed.ok()) return;
  if (db.InTransaction()) {
    // COMMIT was refused before writing (busy): nothing is written.
    (void)db.Exec("ROLLBACK");
    FailPending(group, committed);
    return;
  }
  // COMMIT failed part-way (I/O error while writing or syncing the WAL):
  // the frames may or may not be durable.
  FailPending(group, absl::UnknownError(
                         absl::StrCat("commit outcome unknown: ", committed.message())));
}

}  // namespace roomsync::storage_internal

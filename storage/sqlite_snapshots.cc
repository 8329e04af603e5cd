// SqliteStore's client snapshots (Store::PutSnapshot, NewestSnapshot).
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/request_checks.h"
#include "storage/sqlite_store.h"

namespace roomsync {
namespace {

using storage_internal::SqliteStatement;

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

constexpr const char* kRoomHead = "SELECT epoch, last_seq FROM rooms WHERE room = ?1";
constexpr const char* kPutSnapshot =
    "INSERT INTO room_snapshots (room, seq, epoch, created_at_ms, bytes)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (room, seq) DO UPDATE SET"
    " epoch = excluded.epoch, created_at_ms = excluded.created_at_ms, bytes = excluded.bytes";
// Everything but the newest `keep` of the epoch.
constexpr const char* kTrimSnapshots =
    "DELETE FROM room_snapshots WHERE room = ?1 AND (epoch <> ?2 OR seq NOT IN ("
    " SELECT seq FROM room_snapshots WHERE room = ?1 AND epoch = ?2"
    " ORDER BY seq DESC LIMIT ?3))";
constexpr const char* kNewestSnapshot =
    "SELECT s.seq, s.epoch, s.created_at_ms, s.bytes FROM room_snapshots s"
    " JOIN rooms r ON r.room = s.room AND r.epoch = s.epoch"
    " WHERE s.room = ?1 ORDER BY s.seq DESC LIMIT 1";

}  // namespace

absl::Status SqliteStore::PutSnapshot(std::string_view room, const RoomSnapshot& snapshot,
                                      int keep) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  if (keep < 1) return absl::InvalidArgumentError("keep must be at least 1");
  if (snapshot.seq < 0) return absl::InvalidArgumentError("a snapshot's seq must be >= 0");
  // The writer's lock and one write transaction: the head checked is the
  // head the snapshot is stored against.
  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    {
      absl::StatusOr<SqliteStatement> head = writer_->Prepare(kRoomHead);
      if (!head.ok()) return head.status();
      RETURN_IF_ERROR(head->BindText(1, room));
      absl::StatusOr<bool> row = head->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::FailedPreconditionError("no such room");
      if (head->ColumnString(0) != snapshot.epoch) {
        return absl::FailedPreconditionError("the snapshot is of another epoch of the room");
      }
      if (snapshot.seq > head->ColumnInt64(1)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the snapshot's seq ", snapshot.seq, " is above the room's last seq ",
            head->ColumnInt64(1)));
      }
    }
    {
      absl::StatusOr<SqliteStatement> put = writer_->Prepare(kPutSnapshot);
      if (!put.ok()) return put.status();
      RETURN_IF_ERROR(put->BindText(1, room));
      RETURN_IF_ERROR(put->BindInt64(2, snapshot.seq));
      RETURN_IF_ERROR(put->BindText(3, snapshot.epoch));
      RETURN_IF_ERROR(put->BindInt64(4, absl::ToUnixMillis(absl::Now())));
      RETURN_IF_ERROR(put->BindBlob(5, snapshot.bytes));
      RETURN_IF_ERROR(put->Step().status());
    }
    absl::StatusOr<SqliteStatement> trim = writer_->Prepare(kTrimSnapshots);
    if (!trim.ok()) return trim.status();
    RETURN_IF_ERROR(trim->BindText(1, room));
    RETURN_IF_ERROR(trim->BindText(2, snapshot.epoch));
    RETURN_IF_ERROR(trim->BindInt64(3, keep));
    RETURN_IF_ERROR(trim->Step().status());
    return writer_->Exec("COMMIT");
  }();
  if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  return status;
}

absl::StatusOr<std::optional<RoomSnapshot>> SqliteStore::NewestSnapshot(std::string_view room) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  absl::StatusOr<SqliteStatement> select = reader->db().Prepare(kNewestSnapshot);
  if (!select.ok()) return select.status();
  RETURN_IF_ERROR(select->BindText(1, room));
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<RoomSnapshot>();
  return std::optional<RoomSnapshot>(RoomSnapshot{select->ColumnString(1), select->ColumnInt64(0),
                                                  select->ColumnInt64(2), select->ColumnString(3)});
}

}  // namespace roomsync

// SqliteStore's operator calls (store.h: ListRooms, DescribeRoom,
// ImportRoom). They take the same connections as the request path: reads
// a pooled reader inside one read transaction (one snapshot per call),
// the import the writer under the writer's lock, so it is ordered against
// every group commit.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/document_digest.h"
#include "storage/request_checks.h"
#include "storage/room_epoch.h"
#include "storage/sqlite_store.h"

namespace roomsync {
namespace {

using storage_internal::SqliteDb;
using storage_internal::SqliteStatement;

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

constexpr const char* kRoomsPage =
    "SELECT room, epoch, last_seq, stored_bytes, compacted_through, digest FROM rooms"
    " WHERE room > ?1"
    " ORDER BY room LIMIT ?2";
constexpr const char* kOneRoom =
    "SELECT room, epoch, last_seq, stored_bytes, compacted_through, digest FROM rooms"
    " WHERE room = ?1";
// The room's figures in one pass over its documents (the primary key's
// prefix is the room). length() of a BLOB is its size in bytes without
// reading it.
constexpr const char* kRoomFigures =
    "SELECT count(*), coalesce(sum(deleted <> 0), 0),"
    " coalesce(sum(length(CAST(json AS BLOB))), 0), coalesce(min(seq), 0),"
    " coalesce(max(seq), 0), count(DISTINCT seq),"
    " roomsync_xor(roomsync_document_digest(collection, id, timestamp_ms, deleted, json))"
    " FROM documents WHERE room = ?1";
constexpr const char* kLastWrite =
    "SELECT timestamp_ms FROM documents WHERE room = ?1 ORDER BY seq DESC LIMIT 1";

constexpr const char* kInsertRoom =
    "INSERT INTO rooms (room, epoch, last_seq) VALUES (?1, ?2, 0) ON CONFLICT (room) DO NOTHING";
constexpr const char* kRoomLastSeq = "SELECT last_seq FROM rooms WHERE room = ?1";
constexpr const char* kAnyDocument = "SELECT 1 FROM documents WHERE room = ?1 LIMIT 1";
constexpr const char* kSetHead =
    "UPDATE rooms SET epoch = ?2, last_seq = ?3, stored_bytes = ?4, compacted_through = ?5,"
    " digest = ?6 WHERE room = ?1";
constexpr const char* kInsertDocument =
    "INSERT INTO documents (room, collection, id, seq, timestamp_ms, deleted, json)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// CompactRoom's statements. The tombstones are read once for their figures
// and deleted by the same predicate inside one write transaction, so both
// see the same rows.
constexpr const char* kLeaseEpoch = "SELECT epoch FROM shard_leases WHERE shard = ?1";
constexpr const char* kOldTombstones =
    "SELECT count(*), coalesce(sum(length(CAST(json AS BLOB))), 0), coalesce(max(seq), 0)"
    " FROM documents WHERE room = ?1 AND deleted <> 0 AND timestamp_ms < ?2 AND seq <= ?3";
constexpr const char* kDeleteOldTombstones =
    "DELETE FROM documents WHERE room = ?1 AND deleted <> 0 AND timestamp_ms < ?2 AND seq <= ?3";
constexpr const char* kMarkCompacted =
    "UPDATE rooms SET stored_bytes = stored_bytes - ?2,"
    " compacted_through = max(compacted_through, ?3) WHERE room = ?1";
constexpr const char* kCompactedThrough = "SELECT compacted_through FROM rooms WHERE room = ?1";

constexpr const char* kExportPage =
    "SELECT collection, id, seq, timestamp_ms, deleted, json FROM documents"
    " WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";

// Completes `summary` (room and head already set) from its documents.
absl::Status AddFigures(SqliteDb& db, RoomSummary& summary) {
  absl::StatusOr<SqliteStatement> figures = db.Prepare(kRoomFigures);
  if (!figures.ok()) return figures.status();
  RETURN_IF_ERROR(figures->BindText(1, summary.room));
  absl::StatusOr<bool> row = figures->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("aggregate returned no row");
  summary.documents = figures->ColumnInt64(0);
  summary.deleted_documents = figures->ColumnInt64(1);
  summary.document_bytes = figures->ColumnInt64(2);
  summary.min_seq = figures->ColumnInt64(3);
  summary.max_seq = figures->ColumnInt64(4);
  summary.distinct_seqs = figures->ColumnInt64(5);
  summary.document_digest = static_cast<uint64_t>(figures->ColumnInt64(6));
  absl::StatusOr<SqliteStatement> last = db.Prepare(kLastWrite);
  if (!last.ok()) return last.status();
  RETURN_IF_ERROR(last->BindText(1, summary.room));
  row = last->Step();
  if (!row.ok()) return row.status();
  summary.last_write_ms = *row ? last->ColumnInt64(0) : 0;
  return absl::OkStatus();
}

RoomSummary SummaryFromRow(const SqliteStatement& row) {
  RoomSummary summary;
  summary.room = row.ColumnString(0);
  summary.head = RoomHead{row.ColumnString(1), row.ColumnInt64(2), row.ColumnInt64(3),
                          row.ColumnInt64(4), static_cast<uint64_t>(row.ColumnInt64(5))};
  return summary;
}

}  // namespace

absl::StatusOr<std::vector<RoomSummary>> SqliteStore::ListRooms(std::string_view after,
                                                                int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  Db& db = reader->db();
  // One snapshot for the page and its figures. (ReturnReader rolls back
  // on error.)
  RETURN_IF_ERROR(db.Exec("BEGIN"));
  std::vector<RoomSummary> page;
  {
    absl::StatusOr<SqliteStatement> rooms = db.Prepare(kRoomsPage);
    if (!rooms.ok()) return rooms.status();
    RETURN_IF_ERROR(rooms->BindText(1, after));
    RETURN_IF_ERROR(rooms->BindInt64(2, limit));
    while (true) {
      absl::StatusOr<bool> row = rooms->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      page.push_back(SummaryFromRow(*rooms));
    }
  }
  for (RoomSummary& summary : page) RETURN_IF_ERROR(AddFigures(db, summary));
  RETURN_IF_ERROR(db.Exec("COMMIT"));
  return page;
}

absl::StatusOr<std::optional<RoomSummary>> SqliteStore::DescribeRoom(std::string_view room) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  Db& db = reader->db();
  RETURN_IF_ERROR(db.Exec("BEGIN"));
  std::optional<RoomSummary> summary;
  {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kOneRoom);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, room));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (*row) summary = SummaryFromRow(*select);
  }
  if (summary.has_value()) RETURN_IF_ERROR(AddFigures(db, *summary));
  RETURN_IF_ERROR(db.Exec("COMMIT"));
  return summary;
}

absl::Status SqliteStore::ExportRoom(std::string_view room, int page_size, ExportSink& sink) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  if (page_size <= 0) return absl::InvalidArgumentError("page_size must be positive");
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  Db& db = reader->db();
  // A WAL reader's transaction is a snapshot: commits made meanwhile stay
  // invisible to it. (ReturnReader rolls back on error.)
  RETURN_IF_ERROR(db.Exec("BEGIN"));
  {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kOneRoom);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, room));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError("no such room");
    RETURN_IF_ERROR(sink.Head(SummaryFromRow(*select).head));
  }
  Seq after = 0;
  while (true) {
    std::vector<StoredDocument> page;
    {
      absl::StatusOr<SqliteStatement> select = db.Prepare(kExportPage);
      if (!select.ok()) return select.status();
      RETURN_IF_ERROR(select->BindText(1, room));
      RETURN_IF_ERROR(select->BindInt64(2, after));
      RETURN_IF_ERROR(select->BindInt64(3, page_size));
      while (true) {
        absl::StatusOr<bool> row = select->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        page.push_back(StoredDocument{select->ColumnString(0), select->ColumnString(1),
                                      select->ColumnInt64(3), select->ColumnInt64(4) != 0,
                                      select->ColumnInt64(2), select->ColumnString(5)});
      }
    }
    if (page.empty()) break;
    after = page.back().seq;
    const bool last = static_cast<int>(page.size()) < page_size;
    RETURN_IF_ERROR(sink.Page(std::move(page)));
    if (last) break;
  }
  return db.Exec("COMMIT");
}

absl::Status SqliteStore::ImportRoom(std::string_view room, const RoomHead& head,
                                     std::span<const StoredDocument> documents) {
  RETURN_IF_ERROR(storage_internal::CheckImport(room, head, documents));
  std::string epoch = head.epoch;
  if (epoch.empty()) {
    absl::StatusOr<std::string> fresh = storage_internal::NewRoomEpoch();
    if (!fresh.ok()) return fresh.status();
    epoch = *std::move(fresh);
  }
  int64_t stored_bytes = 0;
  uint64_t digest = 0;
  for (const StoredDocument& doc : documents) {
    stored_bytes += static_cast<int64_t>(doc.json.size());
    digest ^= DocumentDigest(doc);
  }

  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    {
      absl::StatusOr<SqliteStatement> insert = writer_->Prepare(kInsertRoom);
      if (!insert.ok()) return insert.status();
      RETURN_IF_ERROR(insert->BindText(1, room));
      RETURN_IF_ERROR(insert->BindText(2, epoch));
      RETURN_IF_ERROR(insert->Step().status());
    }
    {
      absl::StatusOr<SqliteStatement> select = writer_->Prepare(kRoomLastSeq);
      if (!select.ok()) return select.status();
      RETURN_IF_ERROR(select->BindText(1, room));
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::InternalError("room vanished after insert");
      if (select->ColumnInt64(0) != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the room is not empty (last_seq ", select->ColumnInt64(0), "); import needs a new "
            "or empty room"));
      }
    }
    {
      absl::StatusOr<SqliteStatement> any = writer_->Prepare(kAnyDocument);
      if (!any.ok()) return any.status();
      RETURN_IF_ERROR(any->BindText(1, room));
      absl::StatusOr<bool> row = any->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        return absl::FailedPreconditionError(
            "the room holds documents; import needs a new or empty room");
      }
    }
    {
      absl::StatusOr<SqliteStatement> set = writer_->Prepare(kSetHead);
      if (!set.ok()) return set.status();
      RETURN_IF_ERROR(set->BindText(1, room));
      RETURN_IF_ERROR(set->BindText(2, epoch));
      RETURN_IF_ERROR(set->BindInt64(3, head.last_seq));
      RETURN_IF_ERROR(set->BindInt64(4, stored_bytes));
      RETURN_IF_ERROR(set->BindInt64(5, head.compacted_through));
      RETURN_IF_ERROR(set->BindInt64(6, static_cast<int64_t>(digest)));
      RETURN_IF_ERROR(set->Step().status());
    }
    for (const StoredDocument& doc : documents) {
      absl::StatusOr<SqliteStatement> insert = writer_->Prepare(kInsertDocument);
      if (!insert.ok()) return insert.status();
      RETURN_IF_ERROR(insert->BindText(1, room));
      RETURN_IF_ERROR(insert->BindText(2, doc.collection));
      RETURN_IF_ERROR(insert->BindText(3, doc.id));
      RETURN_IF_ERROR(insert->BindInt64(4, doc.seq));
      RETURN_IF_ERROR(insert->BindInt64(5, doc.timestamp_ms));
      RETURN_IF_ERROR(insert->BindInt64(6, doc.deleted ? 1 : 0));
      // A BLOB, as the commit path binds it: bytes in, the same bytes out.
      RETURN_IF_ERROR(insert->BindBlob(7, doc.json));
      RETURN_IF_ERROR(insert->Step().status());
    }
    return writer_->Exec("COMMIT");
  }();
  if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  return status;
}

absl::StatusOr<CompactionResult> SqliteStore::CompactRoom(std::string_view room,
                                                         const CommitFence& fence,
                                                         int64_t tombstones_before_ms,
                                                         Seq through_seq) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  // The writer's lock orders the compaction against every group commit,
  // as the fence does on PostgreSQL.
  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  absl::StatusOr<CompactionResult> result = [&]() -> absl::StatusOr<CompactionResult> {
    if (fence.lease_epoch != 0) {
      absl::StatusOr<SqliteStatement> lease = writer_->Prepare(kLeaseEpoch);
      if (!lease.ok()) return lease.status();
      RETURN_IF_ERROR(lease->BindInt64(1, fence.shard));
      absl::StatusOr<bool> row = lease->Step();
      if (!row.ok()) return row.status();
      if (!*row || lease->ColumnInt64(0) != fence.lease_epoch) {
        return absl::FailedPreconditionError(absl::StrCat("shard ", fence.shard, " lease epoch ",
                                                          fence.lease_epoch,
                                                          " was taken by another node"));
      }
    }
    {
      absl::StatusOr<SqliteStatement> select = writer_->Prepare(kRoomLastSeq);
      if (!select.ok()) return select.status();
      RETURN_IF_ERROR(select->BindText(1, room));
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::AbortedError("room was never opened");
      if (select->ColumnInt64(0) != fence.expected_last_seq) {
        return absl::AbortedError("room's last_seq moved past the compaction's fence");
      }
    }
    CompactionResult result;
    {
      absl::StatusOr<SqliteStatement> figures = writer_->Prepare(kOldTombstones);
      if (!figures.ok()) return figures.status();
      RETURN_IF_ERROR(figures->BindText(1, room));
      RETURN_IF_ERROR(figures->BindInt64(2, tombstones_before_ms));
      RETURN_IF_ERROR(figures->BindInt64(3, through_seq));
      absl::StatusOr<bool> row = figures->Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::InternalError("aggregate returned no row");
      result.removed = figures->ColumnInt64(0);
      result.removed_bytes = figures->ColumnInt64(1);
      result.compacted_through = figures->ColumnInt64(2);
    }
    if (result.removed > 0) {
      absl::StatusOr<SqliteStatement> remove = writer_->Prepare(kDeleteOldTombstones);
      if (!remove.ok()) return remove.status();
      RETURN_IF_ERROR(remove->BindText(1, room));
      RETURN_IF_ERROR(remove->BindInt64(2, tombstones_before_ms));
      RETURN_IF_ERROR(remove->BindInt64(3, through_seq));
      RETURN_IF_ERROR(remove->Step().status());
      absl::StatusOr<SqliteStatement> mark = writer_->Prepare(kMarkCompacted);
      if (!mark.ok()) return mark.status();
      RETURN_IF_ERROR(mark->BindText(1, room));
      RETURN_IF_ERROR(mark->BindInt64(2, result.removed_bytes));
      RETURN_IF_ERROR(mark->BindInt64(3, result.compacted_through));
      RETURN_IF_ERROR(mark->Step().status());
    }
    absl::StatusOr<SqliteStatement> through = writer_->Prepare(kCompactedThrough);
    if (!through.ok()) return through.status();
    RETURN_IF_ERROR(through->BindText(1, room));
    absl::StatusOr<bool> row = through->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError("room vanished during compaction");
    result.compacted_through = through->ColumnInt64(0);
    RETURN_IF_ERROR(writer_->Exec("COMMIT"));
    return result;
  }();
  if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  return result;
}

}  // namespace roomsync

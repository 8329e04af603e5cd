#include "storage/sqlite_store.h"

#include <chrono>
#include <filesystem>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/migrations.h"
#include "storage/request_checks.h"
#include "storage/room_epoch.h"

namespace roomsync {
namespace {

using storage_internal::SqliteDb;
using storage_internal::SqliteStatement;

// Enough for the room service's pulls and the gateway's history reads to
// run side by side on 2 cores; more would only add open files.
constexpr int kMaxReaders = 4;

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

#define DOC_COLUMNS "collection, id, seq, timestamp_ms, deleted, json"

constexpr const char* kSelectRoom =
    "SELECT epoch, last_seq, stored_bytes, compacted_through, digest FROM rooms WHERE room = ?1";
constexpr const char* kInsertRoom =
    "INSERT INTO rooms (room, epoch, last_seq) VALUES (?1, ?2, 0) "
    "ON CONFLICT (room) DO NOTHING";
constexpr const char* kLookup = "SELECT " DOC_COLUMNS
    " FROM documents WHERE room = ?1 AND collection = ?2 AND id = ?3";
// (Commit's statements are in sqlite_commit_group.cc.)
// Keyset reads: the (room, seq) and (room, collection, seq) indexes serve
// both the range and the order, so a page costs O(limit), never OFFSET.
constexpr const char* kSinceAll = "SELECT " DOC_COLUMNS
    " FROM documents WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
constexpr const char* kSinceCollection = "SELECT " DOC_COLUMNS
    " FROM documents WHERE room = ?1 AND collection = ?4 AND seq > ?2"
    " ORDER BY seq LIMIT ?3";
constexpr const char* kBeforeAll = "SELECT " DOC_COLUMNS
    " FROM documents WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
constexpr const char* kBeforeCollection = "SELECT " DOC_COLUMNS
    " FROM documents WHERE room = ?1 AND collection = ?4 AND seq < ?2"
    " ORDER BY seq DESC LIMIT ?3";

StoredDocument DocumentFromRow(const SqliteStatement& row) {
  StoredDocument doc;
  doc.collection = row.ColumnString(0);
  doc.id = row.ColumnString(1);
  doc.seq = row.ColumnInt64(2);
  doc.timestamp_ms = row.ColumnInt64(3);
  doc.deleted = row.ColumnInt64(4) != 0;
  doc.json = row.ColumnString(5);
  return doc;
}

// A row of kSelectRoom.
RoomHead HeadFromRow(const SqliteStatement& row) {
  return RoomHead{row.ColumnString(0), row.ColumnInt64(1), row.ColumnInt64(2),
                  row.ColumnInt64(3), static_cast<uint64_t>(row.ColumnInt64(4))};
}

// journal_mode is persistent in the file, and switching to WAL needs an
// exclusive lock. SQLite answers BUSY at once, without its busy handler,
// when two new connections race to switch (waiting could deadlock), so
// retry here for as long as the busy timeout would have waited.
absl::Status EnableWal(SqliteDb& db, const std::string& path) {
  absl::Status busy;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    absl::StatusOr<SqliteStatement> mode = db.Prepare("PRAGMA journal_mode=WAL");
    if (!mode.ok()) return mode.status();
    absl::StatusOr<bool> row = mode->Step();
    if (row.ok()) {
      // The answer is the mode in force: not "wal" on filesystems that
      // cannot share memory between processes.
      if (*row && mode->ColumnString(0) == "wal") return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat("cannot enable WAL mode on ", path));
    }
    if (!absl::IsUnavailable(row.status())) return row.status();
    busy = row.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return busy;
}

// Applies every pending migration in one BEGIN IMMEDIATE transaction: the
// write lock is taken before schema_migrations is read, so two processes
// starting together apply each migration exactly once.
absl::Status Migrate(SqliteDb& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(db.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"));
    for (const auto& migration : storage_internal::SqliteMigrations()) {
      absl::StatusOr<SqliteStatement> applied =
          db.Prepare("SELECT 1 FROM schema_migrations WHERE version = ?1");
      if (!applied.ok()) return applied.status();
      RETURN_IF_ERROR(applied->BindInt64(1, migration.version));
      absl::StatusOr<bool> found = applied->Step();
      if (!found.ok()) return found.status();
      if (*found) continue;
      RETURN_IF_ERROR(db.Exec(std::string(migration.sql).c_str()));
      RETURN_IF_ERROR(db.Exec(
          absl::StrCat("INSERT INTO schema_migrations (version) VALUES (",
                       migration.version, ")").c_str()));
    }
    return db.Exec("COMMIT");
  }();
  if (!status.ok() && db.InTransaction()) (void)db.Exec("ROLLBACK");
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
    // Readers use their own connections, so they must all reach one file.
    return absl::InvalidArgumentError("sqlite store needs a file path");
  }
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::create_directories(parent, ec) && ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create directory ", parent.string(), ": ", ec.message()));
  }
  absl::StatusOr<std::unique_ptr<Db>> writer = Db::Open(path, /*create=*/true);
  if (!writer.ok()) return writer.status();
  RETURN_IF_ERROR(EnableWal(**writer, path));
  RETURN_IF_ERROR(Migrate(**writer));
  return std::unique_ptr<SqliteStore>(new SqliteStore(path, *std::move(writer)));
}

absl::StatusOr<SqliteStore::Reader> SqliteStore::BorrowReader() {
  {
    absl::MutexLock lock(&readers_mu_);
    readers_mu_.Await(absl::Condition(
        +[](SqliteStore* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return !self->idle_readers_.empty() || self->open_readers_ < kMaxReaders;
        },
        this));
    if (!idle_readers_.empty()) {
      std::unique_ptr<Db> db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(db));
    }
    ++open_readers_;  // reserve the slot; open outside the lock
  }
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path_, /*create=*/false);
  if (!db.ok()) {
    absl::MutexLock lock(&readers_mu_);
    --open_readers_;
    return db.status();
  }
  // Readers never write; query_only turns a bug that tries into an error.
  if (absl::Status s = (*db)->Exec("PRAGMA query_only=1"); !s.ok()) {
    absl::MutexLock lock(&readers_mu_);
    --open_readers_;
    return s;
  }
  return Reader(this, *std::move(db));
}

void SqliteStore::ReturnReader(std::unique_ptr<Db> db) {
  absl::MutexLock lock(&readers_mu_);
  if (db->InTransaction()) {
    (void)db->Exec("ROLLBACK");
  }
  idle_readers_.push_back(std::move(db));
}

absl::StatusOr<RoomHead> SqliteStore::OpenRoom(std::string_view room) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  {
    absl::StatusOr<Reader> reader = BorrowReader();
    if (!reader.ok()) return reader.status();
    absl::StatusOr<SqliteStatement> select = reader->db().Prepare(kSelectRoom);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, room));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (*row) return HeadFromRow(*select);
  }
  // First use: create it. DO NOTHING, then read back, so that a racing
  // creator (thread or process) wins and both report its epoch.
  absl::StatusOr<std::string> epoch = storage_internal::NewRoomEpoch();
  if (!epoch.ok()) return epoch.status();
  absl::MutexLock lock(&writer_mu_);
  // IMMEDIATE, not autocommit: an autocommit write that finds the WAL moved
  // by another process since its read began fails at once (BUSY_SNAPSHOT);
  // BEGIN IMMEDIATE waits for the lock instead.
  RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
  absl::StatusOr<RoomHead> head = [&]() -> absl::StatusOr<RoomHead> {
    {
      absl::StatusOr<SqliteStatement> insert = writer_->Prepare(kInsertRoom);
      if (!insert.ok()) return insert.status();
      RETURN_IF_ERROR(insert->BindText(1, room));
      RETURN_IF_ERROR(insert->BindText(2, *epoch));
      absl::StatusOr<bool> done = insert->Step();
      if (!done.ok()) return done.status();
    }
    absl::StatusOr<SqliteStatement> select = writer_->Prepare(kSelectRoom);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, room));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError("room vanished after insert");
    return HeadFromRow(*select);
  }();
  if (head.ok()) {
    if (absl::Status s = writer_->Exec("COMMIT"); !s.ok()) head = s;
  }
  if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  return head;
}

absl::StatusOr<std::vector<std::optional<StoredDocument>>> SqliteStore::Lookup(
    std::string_view room, std::span<const DocumentKey> keys) {
  RETURN_IF_ERROR(storage_internal::CheckRoom(room));
  for (const DocumentKey& key : keys) {
    RETURN_IF_ERROR(storage_internal::CheckKey(key.collection, key.id));
  }
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  Db& db = reader->db();
  // One read transaction: every key is read from the same snapshot, as the
  // PostgreSQL store's single query does. (ReturnReader rolls back on error.)
  RETURN_IF_ERROR(db.Exec("BEGIN"));
  std::vector<std::optional<StoredDocument>> found;
  found.reserve(keys.size());
  for (const DocumentKey& key : keys) {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kLookup);
    if (!select.ok()) return select.status();
    RETURN_IF_ERROR(select->BindText(1, room));
    RETURN_IF_ERROR(select->BindText(2, key.collection));
    RETURN_IF_ERROR(select->BindText(3, key.id));
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    found.push_back(*row ? std::optional(DocumentFromRow(*select)) : std::nullopt);
  }
  RETURN_IF_ERROR(db.Exec("COMMIT"));
  return found;
}

absl::Status SqliteStore::Commit(std::string_view room, const CommitFence& fence,
                                 std::span<const StoredDocument> documents,
                                 int64_t stored_bytes_delta, uint64_t digest_delta) {
  // Validation errors are this request's alone: decided before it can
  // join a group with other rooms' commits.
  RETURN_IF_ERROR(storage_internal::CheckCommit(room, fence, documents));
  storage_internal::CommitRequest request(room, fence, documents, stored_bytes_delta,
                                          digest_delta);
  commit_queue_.Submit(request, [this](std::span<storage_internal::CommitRequest* const> group) {
    absl::MutexLock lock(&writer_mu_);
    storage_internal::CommitSqliteGroup(*writer_, group);
  });
  return request.result;
}

absl::StatusOr<std::optional<RoomHead>> SqliteStore::CreateRoomAndCommit(
    std::string_view room, std::string_view epoch, const CommitFence& fence,
    std::span<const StoredDocument> documents, int64_t stored_bytes_delta,
    uint64_t digest_delta) {
  CommitFence first = fence;
  first.expected_last_seq = 0;
  first.keys_are_new = true;
  RETURN_IF_ERROR(storage_internal::CheckCommit(room, first, documents));
  if (epoch.empty()) return absl::InvalidArgumentError("CreateRoomAndCommit needs an epoch");
  storage_internal::CommitRequest request(room, first, documents, stored_bytes_delta,
                                          digest_delta);
  request.create_epoch = epoch;
  // The same queue as Commit's: one writer, and the room's creation joins
  // the group's transaction.
  commit_queue_.Submit(request, [this](std::span<storage_internal::CommitRequest* const> group) {
    absl::MutexLock lock(&writer_mu_);
    storage_internal::CommitSqliteGroup(*writer_, group);
  });
  if (!request.result.ok()) return request.result;
  return std::move(request.existing);
}

absl::Status SqliteStore::Ping() {
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  absl::StatusOr<SqliteStatement> select =
      reader->db().Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!select.ok()) return select.status();
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("schema_migrations answered no row");
  return storage_internal::CheckSchemaVersion(select->ColumnInt64(0),
                                              storage_internal::SqliteMigrations());
}

absl::StatusOr<std::vector<StoredDocument>> SqliteStore::ReadSince(
    std::string_view room, Seq after, const ReadRange& range) {
  return ReadRangeQuery(room, after, range, /*ascending=*/true);
}

absl::StatusOr<std::vector<StoredDocument>> SqliteStore::ReadBefore(
    std::string_view room, Seq before, const ReadRange& range) {
  if (before <= 0) before = std::numeric_limits<Seq>::max();
  return ReadRangeQuery(room, before, range, /*ascending=*/false);
}

absl::StatusOr<std::vector<StoredDocument>> SqliteStore::ReadRangeQuery(
    std::string_view room, Seq bound, const ReadRange& range, bool ascending) {
  RETURN_IF_ERROR(storage_internal::CheckRead(room, range));
  const bool filtered = !range.collection.empty();
  const char* sql = ascending ? (filtered ? kSinceCollection : kSinceAll)
                              : (filtered ? kBeforeCollection : kBeforeAll);
  absl::StatusOr<Reader> reader = BorrowReader();
  if (!reader.ok()) return reader.status();
  absl::StatusOr<SqliteStatement> select = reader->db().Prepare(sql);
  if (!select.ok()) return select.status();
  RETURN_IF_ERROR(select->BindText(1, room));
  RETURN_IF_ERROR(select->BindInt64(2, bound));
  RETURN_IF_ERROR(select->BindInt64(3, range.limit));
  if (filtered) RETURN_IF_ERROR(select->BindText(4, range.collection));
  std::vector<StoredDocument> page;
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    page.push_back(DocumentFromRow(*select));
  }
  return page;
}

}  // namespace roomsync

#include "storage/sqlite_db.h"

#include <sqlite3.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "storage/document_digest.h"

namespace roomsync::storage_internal {
namespace {

// Long enough to ride out another process's migration or checkpoint, short
// enough that a wedged writer surfaces as kUnavailable instead of a hang.
constexpr int kBusyTimeoutMs = 10'000;

std::string_view ColumnBytes(sqlite3_value* value) {
  const void* data = sqlite3_value_blob(value);
  return data == nullptr ? std::string_view()
                         : std::string_view(static_cast<const char*>(data),
                                             static_cast<size_t>(sqlite3_value_bytes(value)));
}

// roomsync_document_digest(collection, id, timestamp_ms, deleted, json):
// DocumentDigest, for the migration that fills rooms.digest in and the
// operators' figures (storage/sqlite_admin.cc).
void DocumentDigestFunction(sqlite3_context* context, int, sqlite3_value** args) {
  const uint64_t digest = DocumentDigest(ColumnBytes(args[0]), ColumnBytes(args[1]),
                                         sqlite3_value_int64(args[2]),
                                         sqlite3_value_int64(args[3]) != 0, ColumnBytes(args[4]));
  sqlite3_result_int64(context, static_cast<sqlite3_int64>(digest));
}

// roomsync_xor(x): the XOR of its arguments (0 over no rows); SQLite has no
// bitwise-XOR aggregate.
void XorStep(sqlite3_context* context, int, sqlite3_value** args) {
  auto* sum = static_cast<uint64_t*>(sqlite3_aggregate_context(context, sizeof(uint64_t)));
  if (sum != nullptr) *sum ^= static_cast<uint64_t>(sqlite3_value_int64(args[0]));
}
void XorFinal(sqlite3_context* context) {
  auto* sum = static_cast<uint64_t*>(sqlite3_aggregate_context(context, 0));
  sqlite3_result_int64(context, sum == nullptr ? 0 : static_cast<sqlite3_int64>(*sum));
}

}  // namespace

absl::Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  std::string message =
      absl::StrCat(ToAbsl(what), ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {  // primary code; extended codes refine it
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      return absl::AbortedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

SqliteStatement::~SqliteStatement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

absl::Status SqliteStatement::BindText(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(),
                               SQLITE_STATIC, SQLITE_UTF8);
  return rc == SQLITE_OK ? absl::OkStatus() : SqliteStatus(rc, db_, "bind");
}

absl::Status SqliteStatement::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob must still be a blob, not NULL: sqlite3_bind_blob64
  // with a null pointer binds NULL, which the NOT NULL column would reject.
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(),
                               bytes.size(), SQLITE_STATIC);
  return rc == SQLITE_OK ? absl::OkStatus() : SqliteStatus(rc, db_, "bind");
}

absl::Status SqliteStatement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  return rc == SQLITE_OK ? absl::OkStatus() : SqliteStatus(rc, db_, "bind");
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, db_, "step");
}

int64_t SqliteStatement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string SqliteStatement::ColumnString(int column) const {
  // sqlite3_column_blob before _bytes, as SQLite's docs require.
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path,
                                                         bool create) {
  // NOMUTEX: each connection is used by one thread at a time (see header),
  // so SQLite's own per-connection mutex would be pure overhead.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
              (create ? SQLITE_OPEN_CREATE : 0);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, raw, absl::StrCat("open ", path));
    sqlite3_close_v2(raw);
    return status;
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  if (absl::Status s = db->Exec("PRAGMA synchronous=FULL"); !s.ok()) return s;
  constexpr int kPure = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  rc = sqlite3_create_function_v2(raw, "roomsync_document_digest", 5, kPure, nullptr,
                                  DocumentDigestFunction, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(raw, "roomsync_xor", 1, kPure, nullptr, nullptr, XorStep,
                                    XorFinal, nullptr);
  }
  if (rc != SQLITE_OK) return SqliteStatus(rc, raw, "register functions");
  return db;
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::Status SqliteDb::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : SqliteStatus(rc, db_, "exec");
}

absl::StatusOr<SqliteStatement> SqliteDb::Prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "prepare");
    it = statements_.emplace(sql, stmt).first;
  }
  return SqliteStatement(db_, it->second);
}

bool SqliteDb::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace roomsync::storage_internal

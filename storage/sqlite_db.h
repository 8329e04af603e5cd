// RAII over one sqlite3 connection and its prepared statements, with
// SQLite result codes mapped to absl::Status. Not thread-safe: whoever
// holds a SqliteDb serializes its use (SqliteStore's mutex or reader pool).
#ifndef ROOMSYNC_STORAGE_SQLITE_DB_H_
#define ROOMSYNC_STORAGE_SQLITE_DB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace roomsync::storage_internal {

// Status for a failed SQLite call. BUSY/LOCKED and I/O trouble are
// kUnavailable (retry later), CONSTRAINT is kAborted (another writer got
// there first), CORRUPT/NOTADB is kDataLoss, anything else kInternal.
absl::Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

// A prepared statement borrowed from a SqliteDb's cache; resets itself and
// clears its bindings when it goes out of scope so the next user starts
// clean. Column indexes are 0-based, bind indexes 1-based (SQLite's).
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteStatement(SqliteStatement&& other) noexcept
      : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  absl::Status BindText(int index, std::string_view text);
  absl::Status BindBlob(int index, std::string_view bytes);
  absl::Status BindInt64(int index, int64_t value);

  // true: a row is available; false: done.
  absl::StatusOr<bool> Step();

  int64_t ColumnInt64(int column) const;
  std::string ColumnString(int column) const;  // text or blob, exact bytes

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  // Opens `path` (creating it if `create`) with the pragmas every
  // connection needs: a busy timeout, and synchronous=FULL so that a
  // committed transaction survives power loss (a push is acked only after).
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                        bool create);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without results (pragmas, BEGIN, COMMIT).
  absl::Status Exec(const char* sql);

  // The cached prepared form of `sql`, prepared on first use.
  absl::StatusOr<SqliteStatement> Prepare(const char* sql);

  // true while a transaction is open (after a failure, to roll back).
  bool InTransaction() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_SQLITE_DB_H_

#include "storage/postgres_store.h"

#include <limits>
#include <pqxx/pqxx>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "storage/migrations.h"
#include "storage/pg_text_array.h"
#include "storage/postgres_statements.h"
#include "storage/request_checks.h"
#include "storage/room_epoch.h"

namespace roomsync {
namespace {

using storage_internal::PgArrayLiteral;
using namespace storage_internal::postgres_sql;  // NOLINT: the statements

// pg_advisory_xact_lock key serializing migrations: "roomsync" in ASCII.
constexpr int64_t kMigrationLockKey = 0x726f6f6d73796e63;

void PrepareStatements(pqxx::connection& conn) {
  conn.prepare("open_room", kOpenRoomSql);
  conn.prepare("commit", kCommitSql);
  conn.prepare("lookup", kLookupSql);
  conn.prepare("since_all", kSinceAllSql);
  conn.prepare("since_collection", kSinceCollectionSql);
  conn.prepare("before_all", kBeforeAllSql);
  conn.prepare("before_collection", kBeforeCollectionSql);
}

absl::Status StatusFromSqlState(std::string_view state, std::string_view what) {
  std::string message = absl::StrCat("postgres ", ToAbsl(state), ": ", ToAbsl(what));
  // 40001 serialization failure, 40P01 deadlock, 23505 unique violation
  // (another writer took these seqs): redo the read-modify-write.
  if (state == "40001" || state == "40P01" || state == "23505") {
    return absl::AbortedError(message);
  }
  // 21000: the batch repeats a key; 22xxx: bad data such as invalid text.
  if (state == "21000" || state.starts_with("22")) {
    return absl::InvalidArgumentError(message);
  }
  if (state == "57014") return absl::DeadlineExceededError(message);
  // 08 connection, 53 resources, 57P0x shutdown/restart, 25006 read-only
  // (a standby after failover): the server may take it later.
  if (state.starts_with("08") || state.starts_with("53") ||
      state.starts_with("57P0") || state == "25006") {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

StoredDocument DocumentFromRow(const pqxx::row& row, int first) {
  StoredDocument doc;
  doc.collection.assign(row[first].c_str(), row[first].size());
  doc.id.assign(row[first + 1].c_str(), row[first + 1].size());
  doc.seq = row[first + 2].as<int64_t>();
  doc.timestamp_ms = row[first + 3].as<int64_t>();
  doc.deleted = row[first + 4].as<bool>();
  pqxx::binarystring json(row[first + 5]);
  doc.json.assign(reinterpret_cast<const char*>(json.data()), json.size());
  return doc;
}

std::string Text(std::string_view s) { return std::string(s); }

absl::Status Migrate(pqxx::connection& conn) {
  pqxx::work tx(conn);
  tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")"));
  tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER PRIMARY KEY,"
      " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
  for (const auto& migration : storage_internal::PostgresMigrations()) {
    pqxx::result applied = tx.exec_params(
        "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version);
    if (!applied.empty()) continue;
    tx.exec(Text(migration.sql));
    tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)",
                   migration.version);
  }
  tx.commit();
  return absl::OkStatus();
}

}  // namespace

// The pool's size is the caller's (StoreOptions): a commit holds its
// connection for the whole round trip including the server's fsync, so
// the pool bounds how many commits can share one WAL flush.
PostgresStore::PostgresStore(const std::string& url, int max_connections)
    : pool_(url, max_connections, &PrepareStatements) {}

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                                   int max_connections) {
  if (max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  std::unique_ptr<PostgresStore> store(new PostgresStore(url, max_connections));
  absl::StatusOr<bool> migrated = store->Run<bool>(
      /*writes=*/false, [](pqxx::connection& conn) -> absl::StatusOr<bool> {
        if (absl::Status s = Migrate(conn); !s.ok()) return s;
        return true;
      });
  if (!migrated.ok()) return migrated.status();
  return store;
}

template <typename T, typename Query>
absl::StatusOr<T> PostgresStore::Run(bool writes, Query&& query) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<storage_internal::PgConnectionPool::Lease> lease = pool_.Acquire();
    if (!lease.ok()) return lease.status();
    try {
      return query(**lease);
    } catch (const pqxx::in_doubt_error& e) {
      lease->Discard();
      return absl::UnknownError(absl::StrCat("commit outcome unknown: ", e.what()));
    } catch (const pqxx::broken_connection& e) {
      lease->Discard();
      // The statement may have committed before the connection dropped.
      if (writes) {
        return absl::UnknownError(absl::StrCat("connection lost during commit: ", e.what()));
      }
      if (attempt == 0) continue;  // reads are idempotent: one fresh try
      return absl::UnavailableError(e.what());
    } catch (const pqxx::sql_error& e) {
      return StatusFromSqlState(e.sqlstate(), e.what());
    } catch (const std::exception& e) {
      lease->Discard();  // unknown state: do not reuse
      return absl::InternalError(absl::StrCat("postgres: ", e.what()));
    }
  }
}

absl::StatusOr<RoomHead> PostgresStore::OpenRoom(std::string_view room) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  absl::StatusOr<std::string> epoch = storage_internal::NewRoomEpoch();
  if (!epoch.ok()) return epoch.status();
  return Run<RoomHead>(false, [&](pqxx::connection& conn) -> absl::StatusOr<RoomHead> {
    pqxx::nontransaction tx(conn);
    // Each statement is its own snapshot: the second try sees the row of a
    // creator that won a race with the first.
    for (int attempt = 0; attempt < 2; ++attempt) {
      pqxx::result head = tx.exec_prepared("open_room", Text(room), *epoch);
      if (!head.empty()) {
        return RoomHead{head[0][0].as<std::string>(), head[0][1].as<int64_t>(),
                        head[0][2].as<int64_t>()};
      }
    }
    return absl::InternalError("room neither created nor found");
  });
}

absl::StatusOr<std::vector<std::optional<StoredDocument>>> PostgresStore::Lookup(
    std::string_view room, std::span<const DocumentKey> keys) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  PgArrayLiteral collections, ids;
  for (const DocumentKey& key : keys) {
    if (absl::Status s = storage_internal::CheckKey(key.collection, key.id); !s.ok()) {
      return s;
    }
    collections.AddText(key.collection);
    ids.AddText(key.id);
  }
  using Found = std::vector<std::optional<StoredDocument>>;
  return Run<Found>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Found> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = tx.exec_prepared("lookup", Text(room), std::move(collections).Finish(),
                                         std::move(ids).Finish());
    Found found(keys.size());
    for (const pqxx::row& row : rows) {
      int64_t ord = row[0].as<int64_t>();  // 1-based
      if (ord < 1 || ord > static_cast<int64_t>(keys.size())) {
        return absl::InternalError("lookup returned an unknown key");
      }
      found[ord - 1] = DocumentFromRow(row, 1);
    }
    return found;
  });
}

absl::Status PostgresStore::Commit(std::string_view room, const CommitFence& fence,
                                   std::span<const StoredDocument> documents,
                                   int64_t stored_bytes_delta) {
  if (absl::Status s = storage_internal::CheckCommit(room, fence, documents); !s.ok()) {
    return s;
  }
  PgArrayLiteral collections, ids, seqs, timestamps, deleted, jsons;
  for (const StoredDocument& doc : documents) {
    collections.AddText(doc.collection);
    ids.AddText(doc.id);
    seqs.AddInt64(doc.seq);
    timestamps.AddInt64(doc.timestamp_ms);
    deleted.AddBool(doc.deleted);
    jsons.AddBytes(doc.json);
  }
  const Seq new_last =
      documents.empty() ? fence.expected_last_seq : documents.back().seq;
  absl::StatusOr<bool> done =
      Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
        // Autocommit: the statement's implicit transaction is the commit,
        // so the whole batch costs one round trip (no BEGIN/COMMIT).
        pqxx::nontransaction tx(conn);
        pqxx::result r = tx.exec_prepared(
            "commit", Text(room), fence.expected_last_seq, new_last,
            std::move(collections).Finish(), std::move(ids).Finish(),
            std::move(seqs).Finish(), std::move(timestamps).Finish(),
            std::move(deleted).Finish(), std::move(jsons).Finish(), stored_bytes_delta);
        if (r[0][0].as<int64_t>() == 0) {
          return absl::AbortedError("room's last_seq moved past the commit fence");
        }
        if (r[0][1].as<int64_t>() != static_cast<int64_t>(documents.size())) {
          return absl::InternalError("commit wrote an unexpected number of rows");
        }
        return true;
      });
  return done.status();
}

absl::StatusOr<std::vector<StoredDocument>> PostgresStore::ReadSince(
    std::string_view room, Seq after, const ReadRange& range) {
  return ReadRangeQuery(room, after, range, /*ascending=*/true);
}

absl::StatusOr<std::vector<StoredDocument>> PostgresStore::ReadBefore(
    std::string_view room, Seq before, const ReadRange& range) {
  if (before <= 0) before = std::numeric_limits<Seq>::max();
  return ReadRangeQuery(room, before, range, /*ascending=*/false);
}

absl::StatusOr<std::vector<StoredDocument>> PostgresStore::ReadRangeQuery(
    std::string_view room, Seq bound, const ReadRange& range, bool ascending) {
  if (absl::Status s = storage_internal::CheckRead(room, range); !s.ok()) return s;
  using Page = std::vector<StoredDocument>;
  return Run<Page>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Page> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows =
        range.collection.empty()
            ? tx.exec_prepared(ascending ? "since_all" : "before_all", Text(room), bound,
                               range.limit)
            : tx.exec_prepared(ascending ? "since_collection" : "before_collection",
                               Text(room), bound, range.limit, Text(range.collection));
    Page page;
    page.reserve(rows.size());
    for (const pqxx::row& row : rows) page.push_back(DocumentFromRow(row, 0));
    return page;
  });
}

}  // namespace roomsync

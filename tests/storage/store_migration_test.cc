// Schema migration 2 (rooms.stored_bytes) on a database left at version 1,
// as a store of the previous release would have: the column is added and
// every existing room's stored_bytes is backfilled from its documents.
// The suite is named Store* so that `ctest -R Store` runs it.
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "gmock/gmock.h"
#include "storage/document_digest.h"
#include "storage/migrations.h"
#include "storage/sqlite_db.h"
#include "tests/storage/store_conformance.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync {
namespace {

using storage_internal::SqliteDb;

// Rooms "a" (two documents, one a tombstone, 4 + 3 bytes; the json is
// non-ASCII so that characters and bytes differ), "b" (one document,
// 5 bytes) and "empty" (none). `blob(hex)` is the backend's literal for
// bytes.
std::string Version1Rows(std::string (*blob)(const std::string& hex)) {
  return "INSERT INTO rooms (room, epoch, last_seq) VALUES "
         "('a', 'ea', 2), ('b', 'eb', 1), ('empty', 'ee', 0);"
         "INSERT INTO documents (room, collection, id, seq, timestamp_ms, deleted, json) VALUES "
         "('a', 'c', 'x', 1, 1, false, " + blob("c3a9c3a9") + "),"
         "('a', 'c', 'y', 2, 2, true, " + blob("7b7d20") + "),"
         "('b', 'c', 'x', 1, 1, false, " + blob("3132333435") + ");";
}

void ExpectBackfilled(Store& store) {
  ASSERT_OK_AND_ASSIGN(RoomHead a, store.OpenRoom("a"));
  EXPECT_EQ(a.epoch, "ea");
  EXPECT_EQ(a.last_seq, 2);
  EXPECT_EQ(a.stored_bytes, 7);
  ASSERT_OK_AND_ASSIGN(RoomHead b, store.OpenRoom("b"));
  EXPECT_EQ(b.stored_bytes, 5);
  ASSERT_OK_AND_ASSIGN(RoomHead empty, store.OpenRoom("empty"));
  EXPECT_EQ(empty.stored_bytes, 0);
  // The digest (migration 6 / SQLite's 5) counts the live documents only:
  // reference values as in store_conformance_digest_test.
  EXPECT_EQ(FormatDigest(a.digest), "b73b38f723e4e53e");
  EXPECT_EQ(FormatDigest(b.digest), "d47aa4a9b89b91ff");
  EXPECT_EQ(empty.digest, 0u);
  // Commits go on from the backfilled value.
  ASSERT_OK(CommitDocs(store, "a", 2, {{"c", "x", "1"}}));
  ASSERT_OK_AND_ASSIGN(a, store.OpenRoom("a"));
  EXPECT_EQ(a.stored_bytes, 4);
  EXPECT_EQ(a.digest, DocumentDigest("c", "x", 3000, false, "1"));
}

TEST(StoreMigration, SqliteBackfillsStoredBytes) {
  const std::string path = testing::TempSqlitePath();
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDb> db, SqliteDb::Open(path, /*create=*/true));
    ASSERT_OK(db->Exec(
        "CREATE TABLE schema_migrations ("
        " version INTEGER PRIMARY KEY NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"));
    ASSERT_EQ(storage_internal::SqliteMigrations()[0].version, 1);
    ASSERT_OK(db->Exec(std::string(storage_internal::SqliteMigrations()[0].sql).c_str()));
    ASSERT_OK(db->Exec("INSERT INTO schema_migrations (version) VALUES (1)"));
    ASSERT_OK(db->Exec(
        Version1Rows([](const std::string& hex) { return "X'" + hex + "'"; }).c_str()));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenStore("sqlite:" + path));
  ExpectBackfilled(*store);
  // Reopening applies nothing twice.
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenStore("sqlite:" + path));
  ASSERT_OK_AND_ASSIGN(RoomHead a, store->OpenRoom("a"));
  EXPECT_EQ(a.stored_bytes, 4);
}

TEST(StoreMigration, PostgresBackfillsStoredBytes) {
  const std::string url = testing::CreateTestDatabase();
  {
    pqxx::connection conn(url);
    pqxx::work tx(conn);
    tx.exec(
        "CREATE TABLE schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    ASSERT_EQ(storage_internal::PostgresMigrations()[0].version, 1);
    tx.exec(std::string(storage_internal::PostgresMigrations()[0].sql));
    tx.exec("INSERT INTO schema_migrations (version) VALUES (1)");
    tx.exec(Version1Rows(
        [](const std::string& hex) { return "decode('" + hex + "', 'hex')"; }));
    tx.commit();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenStore(url));
  ExpectBackfilled(*store);
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenStore(url));
  ASSERT_OK_AND_ASSIGN(RoomHead a, store->OpenRoom("a"));
  EXPECT_EQ(a.stored_bytes, 4);
}

}  // namespace
}  // namespace roomsync

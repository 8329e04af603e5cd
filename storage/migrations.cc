#include "storage/migrations.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "storage/postgres_statements.h"

namespace roomsync::storage_internal {
namespace {

// Keys use the "C" collation: byte order is the same on every server and
// locale, and comparisons are cheaper than ICU/glibc collations.
//
// documents has no foreign key to rooms: the commit fence already requires
// the room row, and a foreign key would cost one more index probe per
// document. json is stored EXTERNAL (out of line, uncompressed) because it
// is client-side ciphertext: compressing it only burns CPU.
constexpr std::array<Migration, 7> kPostgres = {{
    {1, R"sql(
CREATE TABLE rooms (
  room       TEXT COLLATE "C" PRIMARY KEY,
  epoch      TEXT NOT NULL,
  last_seq   BIGINT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE documents (
  room         TEXT COLLATE "C" NOT NULL,
  collection   TEXT COLLATE "C" NOT NULL,
  id           TEXT COLLATE "C" NOT NULL,
  seq          BIGINT NOT NULL,
  timestamp_ms BIGINT NOT NULL,
  deleted      BOOLEAN NOT NULL,
  json         BYTEA NOT NULL,
  PRIMARY KEY (room, collection, id)
);
ALTER TABLE documents ALTER COLUMN json SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX documents_room_seq ON documents (room, seq);
CREATE INDEX documents_room_collection_seq ON documents (room, collection, seq);
)sql"},
    // Per-room stored bytes (RoomHead::stored_bytes), maintained by Commit;
    // existing rooms are backfilled from their documents.
    {2, R"sql(
ALTER TABLE rooms ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET stored_bytes = (
  SELECT coalesce(sum(octet_length(json)), 0) FROM documents
  WHERE documents.room = rooms.room);
)sql"},
    // Each seq index becomes partial, on a predicate every row satisfies
    // (CHECKed) and only its own reads name, so that the planner has one
    // index to choose for each statement (storage/postgres_statements.h).
    // Before, on a table without statistics (a new database, until
    // autovacuum's first ANALYZE), it saw every index as equally cheap: it
    // served the key lookup of each push from (room, collection, seq),
    // reading the room's whole collection (0.55 ms per push at 6,000
    // documents, growing with the room), and per-collection history from
    // (room, seq), reading every collection.
    {3, R"sql(
ALTER TABLE documents
  ADD CONSTRAINT documents_seq_positive CHECK (seq > 0),
  ADD CONSTRAINT documents_collection_named CHECK (collection <> '');
DROP INDEX documents_room_seq;
CREATE UNIQUE INDEX documents_room_seq ON documents (room, seq) WHERE seq > 0;
DROP INDEX documents_room_collection_seq;
CREATE INDEX documents_room_collection_seq ON documents (room, collection, seq)
  WHERE collection <> '';
)sql"},
    // Shard leases (store.h, ShardLease). expires_at is the server's clock,
    // the one clock every node shares.
    {4, R"sql(
CREATE TABLE shard_leases (
  shard      INTEGER PRIMARY KEY CHECK (shard >= 0),
  owner      TEXT COLLATE "C" NOT NULL,
  address    TEXT NOT NULL,
  epoch      BIGINT NOT NULL CHECK (epoch > 0),
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE cluster_nodes (
  node_id    TEXT COLLATE "C" PRIMARY KEY,
  address    TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
)sql"},
    // RoomHead::compacted_through, raised by Store::CompactRoom.
    {5, R"sql(
ALTER TABLE rooms ADD COLUMN compacted_through BIGINT NOT NULL DEFAULT 0;
)sql"},
    // RoomHead::digest (storage/document_digest.h), maintained by Commit;
    // existing rooms get theirs from their live documents.
    {6, R"sql(
ALTER TABLE rooms ADD COLUMN digest BIGINT NOT NULL DEFAULT 0;
UPDATE rooms r SET digest = (
  SELECT coalesce(bit_xor()sql" ROOMSYNC_PG_DOCUMENT_DIGEST(d) R"sql(), 0) FROM documents d
  WHERE d.room = r.room AND NOT d.deleted)
WHERE r.last_seq > 0;
)sql"},
    // Store::PutSnapshot's client snapshots: opaque ciphertext, out of line
    // and uncompressed as documents' json.
    {7, R"sql(
CREATE TABLE room_snapshots (
  room       TEXT COLLATE "C" NOT NULL,
  seq        BIGINT NOT NULL CHECK (seq >= 0),
  epoch      TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  bytes      BYTEA NOT NULL,
  PRIMARY KEY (room, seq)
);
ALTER TABLE room_snapshots ALTER COLUMN bytes SET STORAGE EXTERNAL;
)sql"},
}};

// A rowid table (not WITHOUT ROWID) for documents: rows carry up to
// megabytes of json, and SQLite advises rowid tables for rows larger than
// a twentieth of a page.
constexpr std::array<Migration, 6> kSqlite = {{
    {1, R"sql(
CREATE TABLE rooms (
  room       TEXT PRIMARY KEY NOT NULL,
  epoch      TEXT NOT NULL,
  last_seq   INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE documents (
  room         TEXT NOT NULL,
  collection   TEXT NOT NULL,
  id           TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  deleted      INTEGER NOT NULL,
  json         BLOB NOT NULL,
  PRIMARY KEY (room, collection, id)
);
CREATE UNIQUE INDEX documents_room_seq ON documents (room, seq);
CREATE INDEX documents_room_collection_seq ON documents (room, collection, seq);
)sql"},
    // As PostgreSQL's 2. The store binds json as a BLOB, whose length() is
    // in bytes; the CAST keeps it bytes (not characters) for any TEXT too.
    {2, R"sql(
ALTER TABLE rooms ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET stored_bytes = (
  SELECT coalesce(sum(length(CAST(json AS BLOB))), 0) FROM documents
  WHERE documents.room = rooms.room);
)sql"},
    // As PostgreSQL's 4, with milliseconds since the Unix epoch.
    {3, R"sql(
CREATE TABLE shard_leases (
  shard         INTEGER PRIMARY KEY NOT NULL CHECK (shard >= 0),
  owner         TEXT NOT NULL,
  address       TEXT NOT NULL,
  epoch         INTEGER NOT NULL CHECK (epoch > 0),
  expires_at_ms INTEGER NOT NULL
);
CREATE TABLE cluster_nodes (
  node_id       TEXT PRIMARY KEY NOT NULL,
  address       TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
)sql"},
    // As PostgreSQL's 5.
    {4, R"sql(
ALTER TABLE rooms ADD COLUMN compacted_through INTEGER NOT NULL DEFAULT 0;
)sql"},
    // As PostgreSQL's 6, with the functions every connection registers
    // (storage/sqlite_db.cc).
    {5, R"sql(
ALTER TABLE rooms ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET digest = (
  SELECT roomsync_xor(roomsync_document_digest(collection, id, timestamp_ms, deleted, json))
  FROM documents WHERE documents.room = rooms.room AND deleted = 0)
WHERE last_seq > 0;
)sql"},
    // As PostgreSQL's 7, with milliseconds since the Unix epoch.
    {6, R"sql(
CREATE TABLE room_snapshots (
  room          TEXT NOT NULL,
  seq           INTEGER NOT NULL CHECK (seq >= 0),
  epoch         TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  bytes         BLOB NOT NULL,
  PRIMARY KEY (room, seq)
);
)sql"},
}};

}  // namespace

std::span<const Migration> PostgresMigrations() { return kPostgres; }
std::span<const Migration> SqliteMigrations() { return kSqlite; }

absl::Status CheckSchemaVersion(int64_t applied, std::span<const Migration> migrations) {
  const int expected = migrations.empty() ? 0 : migrations.back().version;
  if (applied >= expected) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the store's schema is at version ", applied, ", this binary needs ", expected,
                   " (was the database restored from an older backup?)"));
}

}  // namespace roomsync::storage_internal

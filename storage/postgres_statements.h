// The SQL of storage/postgres_store.cc's prepared statements, shared with
// the tests that check their plans and the benchmark's PostgreSQL
// references (which must run the very same statements).
#ifndef ROOMSYNC_STORAGE_POSTGRES_STATEMENTS_H_
#define ROOMSYNC_STORAGE_POSTGRES_STATEMENTS_H_

namespace roomsync::storage_internal::postgres_sql {

#define ROOMSYNC_PG_DOC_COLUMNS "d.collection, d.id, d.seq, d.timestamp_ms, d.deleted, d.json"

// The fence, the stored-bytes update and the upsert in one statement. Data-modifying CTEs always run
// to completion, and `written` draws its rows FROM fence: if the UPDATE
// matched no row (another writer moved last_seq, or no such room), the
// INSERT has nothing to insert. A concurrent committer on the same room
// blocks on the rooms row lock, then re-checks last_seq and matches nothing.
inline constexpr const char* kCommitSql = R"sql(
WITH fence AS (
  UPDATE rooms SET last_seq = $3, stored_bytes = stored_bytes + $10
  WHERE room = $1 AND last_seq = $2
  RETURNING room
), written AS (
  INSERT INTO documents AS d (room, collection, id, seq, timestamp_ms, deleted, json)
  SELECT fence.room, b.collection, b.id, b.seq, b.timestamp_ms, b.deleted, b.json
  FROM fence, unnest($4::text[], $5::text[], $6::bigint[], $7::bigint[],
                     $8::boolean[], $9::bytea[])
              AS b(collection, id, seq, timestamp_ms, deleted, json)
  ON CONFLICT (room, collection, id) DO UPDATE SET
    seq = EXCLUDED.seq, timestamp_ms = EXCLUDED.timestamp_ms,
    deleted = EXCLUDED.deleted, json = EXCLUDED.json
  RETURNING 1
)
SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM written))sql";

// The room's head, creating the room on first use, in one round trip. The
// INSERT's new row is invisible to the SELECT of the same statement, so
// exactly one branch answers; when a concurrent creator wins the race, the
// INSERT waits for it and does nothing, the SELECT's snapshot predates its
// row, and no row comes back: the caller asks again.
inline constexpr const char* kOpenRoomSql = R"sql(
WITH created AS (
  INSERT INTO rooms (room, epoch, last_seq) VALUES ($1, $2, 0)
  ON CONFLICT (room) DO NOTHING
  RETURNING epoch, last_seq, stored_bytes
)
SELECT epoch, last_seq, stored_bytes FROM created
UNION ALL
SELECT epoch, last_seq, stored_bytes FROM rooms WHERE room = $1)sql";

// All keys in one round trip, each an independent probe of the primary
// key (LATERAL ... LIMIT 1 keeps the planner from turning the keys into a
// join: a plan cached while the table was empty read the room's every row
// and hash-joined them); ord restores the caller's order.
inline constexpr const char* kLookupSql =
    "SELECT k.ord, " ROOMSYNC_PG_DOC_COLUMNS
    " FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(collection, id, ord)"
    " CROSS JOIN LATERAL (SELECT * FROM documents d WHERE d.room = $1"
    " AND d.collection = k.collection AND d.id = k.id LIMIT 1) d";

// Keyset reads served by the (room, seq) and (room, collection, seq)
// indexes in both directions. "seq > 0" and "collection <> ''" are those
// indexes' predicates (migration 3): true of every row, each names the one
// index its statement should use.
inline constexpr const char* kSinceAllSql = "SELECT " ROOMSYNC_PG_DOC_COLUMNS
    " FROM documents d WHERE d.room = $1 AND d.seq > $2 AND d.seq > 0"
    " ORDER BY d.seq LIMIT $3";
inline constexpr const char* kSinceCollectionSql = "SELECT " ROOMSYNC_PG_DOC_COLUMNS
    " FROM documents d WHERE d.room = $1 AND d.collection = $4 AND d.seq > $2"
    " AND d.collection <> '' ORDER BY d.seq LIMIT $3";
inline constexpr const char* kBeforeAllSql = "SELECT " ROOMSYNC_PG_DOC_COLUMNS
    " FROM documents d WHERE d.room = $1 AND d.seq < $2 AND d.seq > 0"
    " ORDER BY d.seq DESC LIMIT $3";
inline constexpr const char* kBeforeCollectionSql = "SELECT " ROOMSYNC_PG_DOC_COLUMNS
    " FROM documents d WHERE d.room = $1 AND d.collection = $4 AND d.seq < $2"
    " AND d.collection <> '' ORDER BY d.seq DESC LIMIT $3";

#undef ROOMSYNC_PG_DOC_COLUMNS

}  // namespace roomsync::storage_internal::postgres_sql

#endif  // ROOMSYNC_STORAGE_POSTGRES_STATEMENTS_H_

// The SQL of storage/postgres_store.cc's prepared statements, shared with
// the tests that check their plans and the benchmark's PostgreSQL
// references (which must run the very same statements).
#ifndef ROOMSYNC_STORAGE_POSTGRES_STATEMENTS_H_
#define ROOMSYNC_STORAGE_POSTGRES_STATEMENTS_H_

namespace roomsync::storage_internal::postgres_sql {

// DocumentDigest (storage/document_digest.h) of the documents row `d`, in
// SQL: the first 8 bytes of the SHA-256 as a signed BIGINT. Used by the
// migration that fills rooms.digest in and by the operators' figures, where
// it checks the digest Commit maintains from C++ (roomsyncctl check).
// Names are TEXT in the database's encoding, UTF-8 (the store refuses any
// other bytes), so convert_to gives their stored bytes.
#define ROOMSYNC_PG_DOCUMENT_DIGEST(d)                                          \
  "('x' || encode(substr(sha256(int4send(octet_length(" #d ".collection))"      \
  " || convert_to(" #d ".collection, 'UTF8') || int4send(octet_length(" #d ".id))" \
  " || convert_to(" #d ".id, 'UTF8') || int8send(" #d ".timestamp_ms) || " #d ".json),"  \
  " 1, 8), 'hex'))::bit(64)::bigint"

#define ROOMSYNC_PG_DOC_COLUMNS "d.collection, d.id, d.seq, d.timestamp_ms, d.deleted, d.json"

// Run once on every pooled connection. Each statement below is a primary
// key probe or a keyset range; a sequential scan is never the right plan,
// but a planner without statistics (a new database) or a generic plan
// cached while a table was empty picks one: the multi-room fence's
// UPDATE ... FROM unnest() hash-joined a full scan of rooms. This keeps
// those plans on the indexes from the first statement on.
inline constexpr const char* kSessionSetupSql = "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan";

// The commit of a group of rooms (one request per room) in one statement:
// each room's fence, its stored-bytes update and the upsert of its
// documents. Data-modifying CTEs always run to completion, and `written`
// takes only the documents of rooms whose fence matched: a room whose
// last_seq moved (another writer) or that does not exist writes nothing,
// and the others commit. A concurrent committer of the same room blocks on
// its rooms row, then re-checks last_seq and matches nothing. The answer
// is one row per fenced room with its count of written documents.
//   $1..$4: per room (room, expected last_seq, new last_seq, bytes delta)
//   $5..$11: per document (room, collection, id, seq, timestamp_ms,
//            deleted, json)
//   $14: per room, the digest delta (XORed into rooms.digest).
//   $12, $13: per room (shard, lease epoch; 0 = no lease). A fenced room
//            also needs its shard's lease to still have that epoch; FOR
//            SHARE holds the lease row until the commit ends, so a node
//            taking the shard (UPDATE) waits for it, or it for the taker
//            and then sees the new epoch.
#define ROOMSYNC_PG_COMMIT_HEAD                                                   \
  "WITH fence AS ("                                                            \
  " UPDATE rooms r SET last_seq = f.new_last_seq,"                             \
  " stored_bytes = r.stored_bytes + f.stored_bytes_delta,"                     \
  " digest = r.digest # f.digest_delta"                                        \
  " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"       \
  " $12::integer[], $13::bigint[], $14::bigint[])"                             \
  " AS f(room, expected_last_seq, new_last_seq, stored_bytes_delta,"           \
  " shard, lease_epoch, digest_delta)"                                         \
  " WHERE r.room = f.room AND r.last_seq = f.expected_last_seq"                \
  " AND (f.lease_epoch = 0 OR EXISTS (SELECT 1 FROM shard_leases l"            \
  " WHERE l.shard = f.shard AND l.epoch = f.lease_epoch FOR SHARE))"           \
  " RETURNING r.room"                                                          \
  "), written AS ("                                                            \
  " INSERT INTO documents AS d (room, collection, id, seq, timestamp_ms, deleted, json)" \
  " SELECT b.room, b.collection, b.id, b.seq, b.timestamp_ms, b.deleted, b.json" \
  " FROM unnest($5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[]," \
  " $10::boolean[], $11::bytea[])"                                             \
  " AS b(room, collection, id, seq, timestamp_ms, deleted, json)"              \
  " WHERE b.room IN (SELECT room FROM fence)"
#define ROOMSYNC_PG_COMMIT_TAIL                                                \
  " RETURNING d.room"                                                          \
  ")"                                                                          \
  " SELECT fence.room, count(written.room)"                                    \
  " FROM fence LEFT JOIN written ON written.room = fence.room"                 \
  " GROUP BY fence.room"

inline constexpr const char* kCommitSql =
    ROOMSYNC_PG_COMMIT_HEAD
    " ON CONFLICT (room, collection, id) DO UPDATE SET"
    " seq = EXCLUDED.seq, timestamp_ms = EXCLUDED.timestamp_ms,"
    " deleted = EXCLUDED.deleted, json = EXCLUDED.json"
    ROOMSYNC_PG_COMMIT_TAIL;

// The same commit for documents whose keys the caller asserts are not
// stored (CommitFence::keys_are_new: it skipped the Lookup). A plain
// INSERT: a key that is stored after all raises unique_violation (23505),
// which rolls the whole statement back, fences included, and the caller
// redoes that room with a Lookup. One round trip per push instead of two.
inline constexpr const char* kCommitNewKeysSql =
    ROOMSYNC_PG_COMMIT_HEAD ROOMSYNC_PG_COMMIT_TAIL;

// Store::CreateRoomAndCommit for a group of rooms: each room that does
// not exist is created with its epoch and its first documents in one
// statement (one round trip and one flush for a new room's open and first
// commit). `created` only inserts rooms whose shard lease still has the
// given epoch (FOR SHARE, as the commit's fence); a room that exists is
// left alone (DO NOTHING) and answered by the second branch with its head
// from the statement's snapshot, in which the new rows are invisible, so
// each room gets one row: (room, documents written, NULLs) when created,
// (room, -1, its head) when it existed. A room of neither (its lease was
// lost, or a concurrent creator won) gets no row.
//   $1..$6: per room (room, epoch, last_seq, stored_bytes, digest, shard)
//   $7: per room, the lease epoch (0 = no lease)
//   $8..$14: per document (room, collection, id, seq, timestamp_ms,
//            deleted, json)
inline constexpr const char* kCreateAndCommitSql = R"sql(
WITH created AS (
  INSERT INTO rooms (room, epoch, last_seq, stored_bytes, digest)
  SELECT f.room, f.epoch, f.last_seq, f.stored_bytes, f.digest
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[],
              $7::bigint[]) AS f(room, epoch, last_seq, stored_bytes, digest, shard, lease_epoch)
  WHERE f.lease_epoch = 0 OR EXISTS (SELECT 1 FROM shard_leases l
                                     WHERE l.shard = f.shard AND l.epoch = f.lease_epoch FOR SHARE)
  ON CONFLICT (room) DO NOTHING
  RETURNING room
), written AS (
  INSERT INTO documents (room, collection, id, seq, timestamp_ms, deleted, json)
  SELECT b.room, b.collection, b.id, b.seq, b.timestamp_ms, b.deleted, b.json
  FROM unnest($8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[],
              $13::boolean[], $14::bytea[])
    AS b(room, collection, id, seq, timestamp_ms, deleted, json)
  WHERE b.room IN (SELECT room FROM created)
  RETURNING room
)
SELECT c.room, count(w.room), NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
FROM created c LEFT JOIN written w ON w.room = c.room GROUP BY c.room
UNION ALL
SELECT r.room, -1, r.epoch, r.last_seq, r.stored_bytes, r.compacted_through, r.digest
FROM rooms r WHERE r.room = ANY ($1::text[]))sql";

// Shard leases (store.h). A lease is taken when free, expired or released
// (expires_at in the past), with the next epoch; else the statement
// returns no row and the caller reads the holder's.
#define ROOMSYNC_PG_LEASE_COLUMNS \
  "shard, owner, address, epoch, (extract(epoch FROM expires_at) * 1000)::bigint"
inline constexpr const char* kAcquireLeaseSql =
    "INSERT INTO shard_leases AS l (shard, owner, address, epoch, expires_at)"
    " VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond')"
    " ON CONFLICT (shard) DO UPDATE SET owner = EXCLUDED.owner, address = EXCLUDED.address,"
    " epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at WHERE l.expires_at <= now()"
    " RETURNING " ROOMSYNC_PG_LEASE_COLUMNS;
inline constexpr const char* kRenewLeaseSql =
    "UPDATE shard_leases SET expires_at = now() + $4 * interval '1 millisecond'"
    " WHERE shard = $1 AND owner = $2 AND epoch = $3 RETURNING " ROOMSYNC_PG_LEASE_COLUMNS;
inline constexpr const char* kReleaseLeaseSql =
    "UPDATE shard_leases SET expires_at = 'epoch'"
    " WHERE shard = $1 AND owner = $2 AND epoch = $3";
inline constexpr const char* kLeaseSql =
    "SELECT " ROOMSYNC_PG_LEASE_COLUMNS " FROM shard_leases WHERE shard = $1";
inline constexpr const char* kAllLeasesSql =
    "SELECT " ROOMSYNC_PG_LEASE_COLUMNS " FROM shard_leases ORDER BY shard";
#undef ROOMSYNC_PG_LEASE_COLUMNS
inline constexpr const char* kAnnounceNodeSql =
    "INSERT INTO cluster_nodes (node_id, address, expires_at)"
    " VALUES ($1, $2, now() + $3 * interval '1 millisecond')"
    " ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address,"
    " expires_at = EXCLUDED.expires_at";
inline constexpr const char* kLiveNodesSql =
    "SELECT node_id, address FROM cluster_nodes WHERE expires_at > now() ORDER BY node_id";

#undef ROOMSYNC_PG_COMMIT_HEAD
#undef ROOMSYNC_PG_COMMIT_TAIL

// The heads of a group of rooms, creating those that do not exist yet, in
// one round trip. An INSERT's new rows are invisible to the SELECT of the
// same statement, so each room is answered by one branch; when a
// concurrent creator wins a race, the INSERT waits for it and does
// nothing, the SELECT's snapshot predates its row, and that room gets no
// row: the caller asks again. A room named twice is inserted once.
//
// Creating a room does not wait for its WAL flush (synchronous_commit off
// for this statement's own transaction): a new room's push would otherwise
// pay two fsyncs, the open's and the commit's. Safe because nothing durable
// depends on the row alone: the room's first commit is durable, and WAL is
// flushed in order, so the row is on disk before any document of the room;
// a row lost in a crash without documents only changes the epoch of an
// empty room, and a client holding the lost epoch's checkpoint (seq 0) gets
// RESYNC and pulls from the beginning.
//   $1, $2: per room (room, the epoch to create it with)
inline constexpr const char* kOpenRoomsSql = R"sql(
WITH no_flush_wait AS (
  SELECT set_config('synchronous_commit', 'off', true)
), created AS (
  INSERT INTO rooms (room, epoch, last_seq)
  SELECT k.room, k.epoch, 0
  FROM unnest($1::text[], $2::text[]) AS k(room, epoch), no_flush_wait
  ON CONFLICT (room) DO NOTHING
  RETURNING room, epoch, last_seq, stored_bytes, compacted_through, digest
)
SELECT room, epoch, last_seq, stored_bytes, compacted_through, digest FROM created
UNION ALL
SELECT r.room, r.epoch, r.last_seq, r.stored_bytes, r.compacted_through, r.digest
FROM rooms r WHERE r.room = ANY ($1::text[]))sql";

// The keys of a group of lookups (of any rooms) in one round trip, each an
// independent probe of the primary key (LATERAL ... LIMIT 1 keeps the
// planner from turning the keys into a join: a plan cached while the table
// was empty read the room's every row and hash-joined them); ord numbers
// the keys in the order given.
inline constexpr const char* kLookupSql =
    "SELECT k.ord, " ROOMSYNC_PG_DOC_COLUMNS
    " FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY"
    " AS k(room, collection, id, ord)"
    " CROSS JOIN LATERAL (SELECT * FROM documents d WHERE d.room = k.room"
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

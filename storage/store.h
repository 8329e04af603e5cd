// The durable home of every room's documents: read this first.
//
// A Store keeps, per room, the newest accepted state of every document
// (keyed by collection and id) together with the room sequence number at
// which that state was committed, and per room an epoch and the last
// assigned sequence number. It knows nothing of conflict policies: the room
// service decides what to write and assigns sequence numbers; the store
// writes them atomically, fenced so that a writer working from a stale view
// of the room cannot commit.
//
// Every implementation is thread-safe and runs the same conformance suite
// (tests/storage/store_conformance_test.cc).
#ifndef ROOMSYNC_STORAGE_STORE_H_
#define ROOMSYNC_STORAGE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace roomsync {

using Seq = int64_t;

// "Any seq", as an upper bound (Store::CompactRoom).
inline constexpr Seq kNoSeqBound = INT64_MAX;

// A document's identity inside a room.
struct DocumentKey {
  std::string collection;
  std::string id;
};

// One document state, as written by Commit and returned by reads.
struct StoredDocument {
  std::string collection;
  std::string id;
  int64_t timestamp_ms = 0;
  bool deleted = false;
  Seq seq = 0;
  std::string json;  // the client's object, opaque
};

// What a writer must know about a room before it commits.
struct RoomHead {
  std::string epoch;  // identifies the room's history; never empty
  Seq last_seq = 0;   // highest sequence number committed; 0 = none yet
  // The sum of the json sizes (bytes) of the room's stored documents, one
  // state per key, tombstones included: what the room occupies, for
  // per-room quotas. Maintained by Commit from its stored_bytes_delta.
  int64_t stored_bytes = 0;
  // The highest seq of a tombstone removed by compaction (Store::
  // CompactRoom); 0 = none ever removed. A reader whose position is below
  // it may have missed a deletion that is no longer stored, so it cannot
  // continue from there and must start over (docs/api.md, Compaction).
  Seq compacted_through = 0;
  // The XOR of DocumentDigest (storage/document_digest.h) of every live
  // document: the room's state as a client replica can check it.
  // Maintained by Commit from its digest_delta, as stored_bytes.
  uint64_t digest = 0;
};

// What Store::CompactRoom removed.
struct CompactionResult {
  int64_t removed = 0;        // tombstones removed
  int64_t removed_bytes = 0;  // their json sizes, taken off stored_bytes
  Seq compacted_through = 0;  // the room's, after the call
};

// The condition a commit is made under. Today the last sequence number the
// writer saw; a cluster adds the shard lease epoch here, so that a node that
// lost its lease cannot commit either.
struct CommitFence {
  Seq expected_last_seq = 0;
  // The cluster's shard lease this write is made under (DESIGN.md,
  // Sharding): the commit succeeds only while the shard's lease epoch is
  // still `lease_epoch`, so a node that lost its lease cannot commit.
  // lease_epoch 0: no lease (a single node, or a cluster without leases).
  int shard = 0;
  int64_t lease_epoch = 0;
  // The writer skipped Lookup and asserts that none of the documents' keys
  // is stored, so every document is an insert (a chat message with a new
  // id). The store checks it with the write, atomically: one round trip
  // per commit instead of two when the assertion holds.
  bool keys_are_new = false;
};

// A room node's lease on one shard of rooms. Its epoch grows by one each
// time the lease is taken, never when it is renewed: the epoch names one
// continuous ownership, and commits fenced by it (CommitFence) fail once
// any other node has taken the shard.
struct ShardLease {
  int shard = 0;
  std::string owner;    // the holder's node id
  std::string address;  // where the holder serves gRPC, for routing
  int64_t epoch = 0;
  // By the store's clock (PostgreSQL's now(): one clock for every node).
  // Informational: a holder must count its own deadline from before its
  // call, by its own clock.
  int64_t expires_at_ms = 0;
};

// A room node that announced itself recently (Store::AnnounceNode): the
// members among which shards are shared.
struct ClusterNode {
  std::string node_id;
  std::string address;
};

// What an operator sees of one room (RoomAdmin, roomsyncctl): its head as
// stored, plus figures computed from its documents at the time of the call,
// so that a mismatch between the two (Store::DescribeRoom) is visible.
struct RoomSummary {
  std::string room;
  RoomHead head;
  int64_t documents = 0;          // stored keys, tombstones included
  int64_t deleted_documents = 0;  // tombstones among them
  // The sum of the documents' json sizes, counted now; head.stored_bytes is
  // the counter Commit maintains, and the two must agree.
  int64_t document_bytes = 0;
  Seq min_seq = 0;  // lowest / highest document seq; 0 without documents
  Seq max_seq = 0;
  // Distinct seqs among the documents: fewer than `documents` means a seq
  // is held by two documents (the schema forbids it; a hand edit may not).
  int64_t distinct_seqs = 0;
  // timestamp_ms of the document at max_seq: the client's time of the last
  // write that is still stored (the store keeps no server commit time);
  // 0 without documents.
  int64_t last_write_ms = 0;
  // The digest of the documents, computed now; head.digest is the one
  // Commit maintains, and the two must agree.
  uint64_t document_digest = 0;
};

// An encrypted snapshot of a room (docs/api.md, "Snapshots"): the room's
// state at `seq` of `epoch` as the client that uploaded it holds it, opaque
// to the server, so that a new client can start from it and pull only what
// came after.
struct RoomSnapshot {
  std::string epoch;
  Seq seq = 0;
  int64_t created_ms = 0;  // by the store's clock; set by PutSnapshot
  std::string bytes;
};

// Which documents a read returns.
struct ReadRange {
  std::string_view collection;  // empty = every collection
  int limit = 100;              // > 0
};

// Receives a room's export (Store::ExportRoom): the head first, then the
// documents in seq order, page by page. An error from either stops the
// export and is its result.
class ExportSink {
 public:
  virtual ~ExportSink() = default;
  virtual absl::Status Head(const RoomHead& head) = 0;
  virtual absl::Status Page(std::vector<StoredDocument> documents) = 0;
};

// A fresh room epoch (16 random bytes as hex), as OpenRoom creates rooms
// with: for Store::CreateRoomAndCommit.
absl::StatusOr<std::string> NewRoomEpoch();

class Store {
 public:
  virtual ~Store() = default;

  // The room's head, creating the room (with a fresh random epoch and
  // last_seq 0) on first use.
  virtual absl::StatusOr<RoomHead> OpenRoom(std::string_view room) = 0;

  // The stored state of each key, in the order of `keys`; nullopt where the
  // key is not stored. One round trip for the whole batch.
  virtual absl::StatusOr<std::vector<std::optional<StoredDocument>>> Lookup(
      std::string_view room, std::span<const DocumentKey> keys) = 0;

  // Writes `documents` in one transaction, replacing any stored state of
  // the same keys, sets the room's last_seq to the last document's seq and
  // adds `stored_bytes_delta` to the room's stored_bytes, all atomically
  // with the fence check: a commit that fails writes none of them.
  // The caller guarantees: keys are distinct, seqs are
  // fence.expected_last_seq + 1, + 2, ... in order, and stored_bytes_delta
  // is the sum of the documents' json sizes minus the json sizes of the
  // states they replace, as read by Lookup under the same fence (a key not
  // stored replaces 0 bytes). The store does not re-derive it: because the
  // fence guarantees nothing was committed since that Lookup, the delta is
  // exact whenever the commit succeeds. 0 for an empty batch.
  // digest_delta, XORed into the room's digest, is made the same way: the
  // XOR of DocumentDigest of each written state and of each state it
  // replaces.
  // kFailedPrecondition: fence.lease_epoch is no longer the shard's lease
  //   epoch (another node took the shard); nothing was written.
  // kAlreadyExists: fence.keys_are_new, but a key is stored; nothing was
  //   written; Lookup and redo (the room's head is unchanged).
  // kAborted: the room's last_seq is no longer fence.expected_last_seq
  //   (another writer committed), or the room was never opened; nothing
  //   was written; re-read and redo.
  // kInvalidArgument: seqs do not continue the fence, or a room, collection
  //   or id is not NUL-free UTF-8 (both backends store them as text).
  // kUnavailable: the store could not be reached; nothing was written.
  // kUnknown: the commit's outcome is unknown (connection lost during
  //   COMMIT); the caller must not acknowledge it as written.
  virtual absl::Status Commit(std::string_view room, const CommitFence& fence,
                              std::span<const StoredDocument> documents,
                              int64_t stored_bytes_delta, uint64_t digest_delta) = 0;

  // A room's first commit when the writer has not opened the room and
  // guesses that it is new (a chat room's first message): one round trip
  // instead of OpenRoom's and Commit's. When no room of that name exists,
  // creates it with `epoch` and commits `documents` as Commit would with
  // fence.expected_last_seq 0 and fence.keys_are_new (seqs 1, 2, ...), so
  // the room's stored_bytes becomes stored_bytes_delta and its digest
  // digest_delta; answers nullopt. When the room exists (of any state),
  // writes nothing and answers its head, as OpenRoom would: the writer
  // decides again from it. Errors as Commit's (kFailedPrecondition: the
  // lease is lost; kAborted: a concurrent creator won a race, nothing was
  // written: open the room and redo); nothing is written on any of them
  // but kUnknown.
  virtual absl::StatusOr<std::optional<RoomHead>> CreateRoomAndCommit(
      std::string_view room, std::string_view epoch, const CommitFence& fence,
      std::span<const StoredDocument> documents, int64_t stored_bytes_delta,
      uint64_t digest_delta) = 0;

  // Takes the lease on `shard` for `owner` if it is free, expired or
  // released (epoch + 1, valid for `ttl` from now by the store's clock),
  // atomically against other takers. Returns the shard's lease after the
  // attempt: `owner`'s if taken, else the current holder's, unchanged.
  virtual absl::StatusOr<ShardLease> AcquireShardLease(int shard, std::string_view owner,
                                                       std::string_view address,
                                                       int64_t ttl_ms) = 0;

  // Extends `owner`'s lease of epoch `epoch` to `ttl` from now (also when
  // it had expired, as long as nobody took it since). kFailedPrecondition
  // when the shard's lease is no longer (owner, epoch).
  virtual absl::StatusOr<ShardLease> RenewShardLease(int shard, std::string_view owner,
                                                     int64_t epoch, int64_t ttl_ms) = 0;

  // Ends `owner`'s lease of epoch `epoch` now, so that the next node takes
  // the shard without waiting for it to expire (a graceful hand-off). OK
  // when the lease is already someone else's.
  virtual absl::Status ReleaseShardLease(int shard, std::string_view owner, int64_t epoch) = 0;

  // Every shard lease ever taken, by shard.
  virtual absl::StatusOr<std::vector<ShardLease>> ListShardLeases() = 0;

  // Records that `node_id` (serving at `address`) is alive for `ttl` from
  // now by the store's clock, so that other nodes count it when they share
  // shards out, before it holds any. ttl_ms 0: the node is leaving.
  virtual absl::Status AnnounceNode(std::string_view node_id, std::string_view address,
                                    int64_t ttl_ms) = 0;
  // The nodes whose announcement has not expired, by node id.
  virtual absl::StatusOr<std::vector<ClusterNode>> ListLiveNodes() = 0;

  // Up to range.limit documents with seq > after, in ascending seq order
  // (keyset pagination; never OFFSET).
  virtual absl::StatusOr<std::vector<StoredDocument>> ReadSince(
      std::string_view room, Seq after, const ReadRange& range) = 0;

  // Up to range.limit documents with seq < before, in descending seq order;
  // before <= 0 means from the newest.
  virtual absl::StatusOr<std::vector<StoredDocument>> ReadBefore(
      std::string_view room, Seq before, const ReadRange& range) = 0;

  // Operators' calls (services/room/room_admin_service.h). Each reads or
  // writes on its own, outside the room service's commit path; none is
  // meant for a request's hot path (the figures are counted from the
  // documents, O(documents) per room).

  // Up to `limit` (> 0) rooms whose name sorts after `after` (bytewise;
  // "" = from the first), by name: keyset pagination, as for documents.
  virtual absl::StatusOr<std::vector<RoomSummary>> ListRooms(std::string_view after,
                                                             int limit) = 0;

  // The room's summary; nullopt if it was never opened. Unlike OpenRoom it
  // never creates the room.
  virtual absl::StatusOr<std::optional<RoomSummary>> DescribeRoom(std::string_view room) = 0;

  // Every document of the room, in seq order and pages of up to
  // `page_size` (> 0), with the head they belong to: all read from one
  // snapshot, so the pages hold exactly the room's documents as of
  // head.last_seq even while commits go on (a paged ReadSince would not:
  // a document updated meanwhile moves past the pages already read).
  // kNotFound when the room was never opened. The snapshot is held until
  // the sink has taken the last page.
  virtual absl::Status ExportRoom(std::string_view room, int page_size, ExportSink& sink) = 0;

  // Writes an exported room's documents as they were: their seqs, stored
  // bytes and order unchanged, with head.epoch (empty: a fresh one),
  // head.last_seq and head.compacted_through, and stored_bytes and digest
  // computed from the documents (head's are ignored). One transaction: all or nothing.
  // The room must be new or empty (opened, nothing ever committed):
  // kFailedPrecondition otherwise, and nothing is written. A commit racing
  // with the import either lands first (and the import is refused) or
  // fails its fence afterwards (kAborted), as against any other writer.
  // kInvalidArgument: seqs not strictly ascending within 1..last_seq, a
  // repeated key, or a name that Commit would refuse.
  virtual absl::Status ImportRoom(std::string_view room, const RoomHead& head,
                                  std::span<const StoredDocument> documents) = 0;

  // Removes the room's tombstones whose timestamp_ms is below
  // `tombstones_before_ms` and whose seq is at most `through_seq` (an
  // encrypted snapshot covers them: docs/api.md, "Snapshots"), takes their sizes off stored_bytes and raises
  // compacted_through to the highest seq removed (never lowers it), in one
  // transaction under `fence` as Commit's (keys_are_new is ignored):
  // written by the room's writer, between its commits, so that its view of
  // the head stays exact. Live documents are never touched. Errors as
  // Commit's: kFailedPrecondition (lease lost), kAborted (last_seq moved or
  // the room was never opened), kUnavailable, kUnknown; nothing was
  // removed on any of them but kUnknown.
  virtual absl::StatusOr<CompactionResult> CompactRoom(std::string_view room,
                                                       const CommitFence& fence,
                                                       int64_t tombstones_before_ms,
                                                       Seq through_seq = kNoSeqBound) = 0;

  // Stores `snapshot` for the room, replacing one at the same seq, then
  // keeps only the room's newest `keep` (>= 1) snapshots by seq (and none
  // of another epoch), in one transaction. kFailedPrecondition when the
  // room was never opened, its epoch is not snapshot.epoch, or snapshot.seq
  // is above its last_seq; nothing is written then.
  virtual absl::Status PutSnapshot(std::string_view room, const RoomSnapshot& snapshot,
                                   int keep) = 0;

  // The room's snapshot of the highest seq in its current epoch; nullopt
  // when it has none (or was never opened).
  virtual absl::StatusOr<std::optional<RoomSnapshot>> NewestSnapshot(std::string_view room) = 0;

  // One short query that shows the store answers and still holds this
  // binary's schema, for health checks (no room is read or written).
  // kUnavailable: the store cannot be reached. kFailedPrecondition: a
  // migration this binary applied at start-up is missing (the database was
  // restored from before it, or replaced).
  virtual absl::Status Ping() = 0;
};

// How a store may use the resources behind it.
struct StoreOptions {
  // PostgreSQL: the most connections the store opens (lazily) to the
  // server. Each runs one statement at a time, so this bounds the commits
  // in flight; PostgreSQL's WAL group commit lets concurrent commits share
  // fsyncs, so it should be at least the number of threads that commit at
  // once (the room service passes its store_threads). Every node counts
  // against the server's max_connections (100 by default).
  // SQLite: ignored. Its commits go through one writer connection whatever
  // the concurrency (concurrent commits share a transaction instead), and
  // its few reader connections are sized for the cores, not the callers.
  // Must be >= 1.
  int max_connections = 32;
};

// Opens a store by URL and applies pending schema migrations (under a lock,
// so concurrent starts are safe):
//   sqlite:PATH                     embedded SQLite file (created if missing)
//   postgresql://... or postgres://...   PostgreSQL via libpq's URI syntax
// kInvalidArgument for an unknown scheme or invalid options; kUnavailable
// when unreachable.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url,
                                                 const StoreOptions& options = {});

}  // namespace roomsync

#endif  // ROOMSYNC_STORAGE_STORE_H_

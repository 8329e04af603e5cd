// Store on PostgreSQL through libpqxx: the cluster's source of truth.
//
// Every call is one statement on a pooled connection (one round trip).
// Commits and lookups of different rooms that arrive together travel
// together (storage/group_queue.h): one statement opens (or creates) every
// room of a group; one statement checks every room's
// fence and upserts every room's documents, its implicit transaction
// making it atomic per room and sharing one WAL flush; one query probes
// the keys of every lookup. Batches travel as array parameters and are
// unnested on the server. Durability is the server's: synchronous_commit
// must stay on (the default), because Commit's return is an ack.
#ifndef ROOMSYNC_STORAGE_POSTGRES_STORE_H_
#define ROOMSYNC_STORAGE_POSTGRES_STORE_H_

#include <memory>
#include <span>
#include <string>

#include "storage/pg_connection_pool.h"
#include "storage/store.h"

namespace roomsync {
namespace storage_internal {
struct CommitRequest;
struct LookupRequest;
struct OpenRoomRequest;
template <typename Request>
class GroupQueue;
}  // namespace storage_internal

class PostgresStore final : public Store {
 public:
  // Connects to `url` (libpq URI) and applies pending migrations under a
  // transaction-scoped advisory lock. At most `max_connections` (>= 1)
  // pooled connections (StoreOptions). kUnavailable when unreachable.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& url,
                                                             int max_connections);
  ~PostgresStore() override;

  absl::StatusOr<RoomHead> OpenRoom(std::string_view room) override;
  absl::StatusOr<std::vector<std::optional<StoredDocument>>> Lookup(
      std::string_view room, std::span<const DocumentKey> keys) override;
  absl::Status Commit(std::string_view room, const CommitFence& fence,
                      std::span<const StoredDocument> documents,
                      int64_t stored_bytes_delta, uint64_t digest_delta) override;
  absl::StatusOr<std::optional<RoomHead>> CreateRoomAndCommit(
      std::string_view room, std::string_view epoch, const CommitFence& fence,
      std::span<const StoredDocument> documents, int64_t stored_bytes_delta,
      uint64_t digest_delta) override;
  absl::StatusOr<ShardLease> AcquireShardLease(int shard, std::string_view owner,
                                               std::string_view address, int64_t ttl_ms) override;
  absl::StatusOr<ShardLease> RenewShardLease(int shard, std::string_view owner, int64_t epoch,
                                             int64_t ttl_ms) override;
  absl::Status ReleaseShardLease(int shard, std::string_view owner, int64_t epoch) override;
  absl::StatusOr<std::vector<ShardLease>> ListShardLeases() override;
  absl::Status AnnounceNode(std::string_view node_id, std::string_view address,
                            int64_t ttl_ms) override;
  absl::StatusOr<std::vector<ClusterNode>> ListLiveNodes() override;
  absl::StatusOr<std::vector<StoredDocument>> ReadSince(
      std::string_view room, Seq after, const ReadRange& range) override;
  absl::StatusOr<std::vector<StoredDocument>> ReadBefore(
      std::string_view room, Seq before, const ReadRange& range) override;
  absl::StatusOr<std::vector<RoomSummary>> ListRooms(std::string_view after, int limit) override;
  absl::StatusOr<std::optional<RoomSummary>> DescribeRoom(std::string_view room) override;
  absl::Status ExportRoom(std::string_view room, int page_size, ExportSink& sink) override;
  absl::StatusOr<CompactionResult> CompactRoom(std::string_view room, const CommitFence& fence,
                                               int64_t tombstones_before_ms,
                                               Seq through_seq) override;
  absl::Status ImportRoom(std::string_view room, const RoomHead& head,
                          std::span<const StoredDocument> documents) override;
  absl::Status PutSnapshot(std::string_view room, const RoomSnapshot& snapshot,
                           int keep) override;
  absl::StatusOr<std::optional<RoomSnapshot>> NewestSnapshot(std::string_view room) override;
  absl::Status Ping() override;

 private:
  PostgresStore(const std::string& url, int max_connections);

  // Runs `query` on a pooled connection, mapping libpqxx exceptions to
  // Status. `writes`: a lost connection means "outcome unknown" rather
  // than "retry"; reads are retried once on a fresh connection instead.
  template <typename T, typename Query>
  absl::StatusOr<T> Run(bool writes, Query&& query);

  absl::StatusOr<std::vector<StoredDocument>> ReadRangeQuery(
      std::string_view room, Seq bound, const ReadRange& range, bool ascending);

  // One statement for a group; every request gets its result.
  void OpenRoomGroup(std::span<storage_internal::OpenRoomRequest* const> group);
  void LookupGroup(std::span<storage_internal::LookupRequest* const> group);
  // Why a request's fence failed: its shard lease or its room's last_seq.
  absl::Status FenceFailure(const storage_internal::CommitRequest& request);
  // One shard's lease (none if never taken), or every lease.
  absl::StatusOr<std::vector<ShardLease>> ReadLeases(std::optional<int> shard);
  // `keys_are_new`: every request's fence says so (CommitFence), and the
  // group runs the insert-only statement.
  void CommitGroup(std::span<storage_internal::CommitRequest* const> group, bool keys_are_new);
  void CreateAndCommitGroup(std::span<storage_internal::CommitRequest* const> group);

  storage_internal::PgConnectionPool pool_;
  std::unique_ptr<storage_internal::GroupQueue<storage_internal::OpenRoomRequest>> opens_;
  std::unique_ptr<storage_internal::GroupQueue<storage_internal::LookupRequest>> lookups_;
  std::unique_ptr<storage_internal::GroupQueue<storage_internal::CommitRequest>> commits_;
  // Commits of new keys only: a group's statement is either an upsert or a
  // plain insert, so they gather apart.
  std::unique_ptr<storage_internal::GroupQueue<storage_internal::CommitRequest>> new_key_commits_;
  // CreateRoomAndCommit's requests: their own statement.
  std::unique_ptr<storage_internal::GroupQueue<storage_internal::CommitRequest>> creates_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_STORAGE_POSTGRES_STORE_H_

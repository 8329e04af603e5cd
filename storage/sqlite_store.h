// Store on an embedded SQLite file: the single-node default.
//
// WAL mode lets readers run beside the one writer. Writes go through one
// connection guarded by a mutex (SQLite allows one writer per file anyway);
// reads use a small pool of their own connections. Commits are durable
// (synchronous=FULL) before Commit returns; concurrent Commits (of
// different rooms) share one transaction and so one fsync (see
// sqlite_commit_group.h). Several processes may open the same file:
// SQLite's file locks plus a busy timeout serialize them, and BEGIN
// IMMEDIATE makes the commit fence's read-check-write atomic.
#ifndef ROOMSYNC_STORAGE_SQLITE_STORE_H_
#define ROOMSYNC_STORAGE_SQLITE_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/functional/function_ref.h"
#include "storage/sqlite_commit_group.h"
#include "storage/sqlite_db.h"
#include "storage/store.h"

namespace roomsync {

class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path` (creating missing parent
  // directories) and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);

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
  // sqlite_admin.cc.
  absl::StatusOr<std::vector<RoomSummary>> ListRooms(std::string_view after, int limit) override;
  absl::StatusOr<std::optional<RoomSummary>> DescribeRoom(std::string_view room) override;
  absl::Status ExportRoom(std::string_view room, int page_size, ExportSink& sink) override;
  absl::Status ImportRoom(std::string_view room, const RoomHead& head,
                          std::span<const StoredDocument> documents) override;
  absl::StatusOr<CompactionResult> CompactRoom(std::string_view room, const CommitFence& fence,
                                               int64_t tombstones_before_ms,
                                               Seq through_seq) override;
  absl::Status PutSnapshot(std::string_view room, const RoomSnapshot& snapshot,
                           int keep) override;
  absl::StatusOr<std::optional<RoomSnapshot>> NewestSnapshot(std::string_view room) override;
  absl::Status Ping() override;

 private:
  using Db = storage_internal::SqliteDb;

  // A reader connection borrowed from the pool; given back on destruction.
  class Reader;

  SqliteStore(std::string path, std::unique_ptr<Db> writer)
      : path_(std::move(path)), writer_(std::move(writer)) {}

  absl::StatusOr<Reader> BorrowReader();
  // Runs `body` on the writer inside BEGIN IMMEDIATE ... COMMIT (rolled
  // back when it fails). sqlite_leases.cc.
  template <typename T>
  absl::StatusOr<T> InWriteTransaction(absl::FunctionRef<absl::StatusOr<T>(Db&)> body);
  void ReturnReader(std::unique_ptr<Db> db);
  absl::StatusOr<std::vector<StoredDocument>> ReadRangeQuery(
      std::string_view room, Seq bound, const ReadRange& range, bool ascending);

  const std::string path_;

  // Commit's leader holds writer_mu_ while it runs a group; OpenRoom's
  // room creation takes it too.
  storage_internal::SqliteCommitQueue commit_queue_{storage_internal::kSqliteCommitGroupLimits};
  absl::Mutex writer_mu_;
  std::unique_ptr<Db> writer_ ABSL_GUARDED_BY(writer_mu_);

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Db>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);
  int open_readers_ ABSL_GUARDED_BY(readers_mu_) = 0;
};

// Defined here rather than in sqlite_store.cc because sqlite_admin.cc
// borrows readers too.
class SqliteStore::Reader {
 public:
  Reader(SqliteStore* store, std::unique_ptr<Db> db)
      : store_(store), db_(std::move(db)) {}
  Reader(Reader&& other) noexcept = default;
  ~Reader() {
    if (db_ != nullptr) store_->ReturnReader(std::move(db_));
  }
  Db& db() { return *db_; }

 private:
  SqliteStore* store_;
  std::unique_ptr<Db> db_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_STORAGE_SQLITE_STORE_H_

// SqliteStore's shard leases (store.h). A single-file store has one node,
// but the Store contract is the same for both backends, and the
// conformance suite checks it on both. The clock is this process's.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/request_checks.h"
#include "storage/sqlite_store.h"

namespace roomsync {
namespace {

using storage_internal::SqliteStatement;

constexpr const char* kSelectLease =
    "SELECT shard, owner, address, epoch, expires_at_ms FROM shard_leases WHERE shard = ?1";
constexpr const char* kSelectAllLeases =
    "SELECT shard, owner, address, epoch, expires_at_ms FROM shard_leases ORDER BY shard";
constexpr const char* kUpsertLease =
    "INSERT INTO shard_leases (shard, owner, address, epoch, expires_at_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner,"
    " address = excluded.address, epoch = excluded.epoch, expires_at_ms = excluded.expires_at_ms";

constexpr const char* kUpsertNode =
    "INSERT INTO cluster_nodes (node_id, address, expires_at_ms) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (node_id) DO UPDATE SET address = excluded.address,"
    " expires_at_ms = excluded.expires_at_ms";
constexpr const char* kSelectLiveNodes =
    "SELECT node_id, address FROM cluster_nodes WHERE expires_at_ms > ?1 ORDER BY node_id";

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

ShardLease LeaseFromRow(const SqliteStatement& row) {
  return ShardLease{static_cast<int>(row.ColumnInt64(0)), row.ColumnString(1),
                    row.ColumnString(2), row.ColumnInt64(3), row.ColumnInt64(4)};
}

absl::StatusOr<std::optional<ShardLease>> ReadLease(storage_internal::SqliteDb& db, int shard) {
  absl::StatusOr<SqliteStatement> select = db.Prepare(kSelectLease);
  if (!select.ok()) return select.status();
  if (absl::Status s = select->BindInt64(1, shard); !s.ok()) return s;
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return LeaseFromRow(*select);
}

absl::Status WriteLease(storage_internal::SqliteDb& db, const ShardLease& lease) {
  absl::StatusOr<SqliteStatement> upsert = db.Prepare(kUpsertLease);
  if (!upsert.ok()) return upsert.status();
  for (absl::Status s : {upsert->BindInt64(1, lease.shard), upsert->BindText(2, lease.owner),
                         upsert->BindText(3, lease.address), upsert->BindInt64(4, lease.epoch),
                         upsert->BindInt64(5, lease.expires_at_ms)}) {
    if (!s.ok()) return s;
  }
  return upsert->Step().status();
}

}  // namespace

template <typename T>
absl::StatusOr<T> SqliteStore::InWriteTransaction(
    absl::FunctionRef<absl::StatusOr<T>(storage_internal::SqliteDb&)> body) {
  absl::MutexLock lock(&writer_mu_);
  // IMMEDIATE: the read-then-write below must not interleave with another
  // process's (see OpenRoom).
  if (absl::Status s = writer_->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::StatusOr<T> result = body(*writer_);
  if (result.ok()) {
    if (absl::Status s = writer_->Exec("COMMIT"); !s.ok()) result = s;
  }
  if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  return result;
}

absl::StatusOr<ShardLease> SqliteStore::AcquireShardLease(int shard, std::string_view owner,
                                                          std::string_view address,
                                                          int64_t ttl_ms) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, ttl_ms); !s.ok()) return s;
  return InWriteTransaction<ShardLease>([&](Db& db) -> absl::StatusOr<ShardLease> {
    absl::StatusOr<std::optional<ShardLease>> current = ReadLease(db, shard);
    if (!current.ok()) return current.status();
    const int64_t now = NowMs();
    if (current->has_value() && (*current)->expires_at_ms > now) return **current;
    ShardLease taken{shard, std::string(owner), std::string(address),
                     current->has_value() ? (*current)->epoch + 1 : 1, now + ttl_ms};
    if (absl::Status s = WriteLease(db, taken); !s.ok()) return s;
    return taken;
  });
}

absl::StatusOr<ShardLease> SqliteStore::RenewShardLease(int shard, std::string_view owner,
                                                        int64_t epoch, int64_t ttl_ms) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, ttl_ms); !s.ok()) return s;
  return InWriteTransaction<ShardLease>([&](Db& db) -> absl::StatusOr<ShardLease> {
    absl::StatusOr<std::optional<ShardLease>> current = ReadLease(db, shard);
    if (!current.ok()) return current.status();
    if (!current->has_value() || (*current)->owner != owner || (*current)->epoch != epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("shard ", shard, " lease epoch ", epoch, " is no longer this node's"));
    }
    ShardLease renewed = **current;
    renewed.expires_at_ms = NowMs() + ttl_ms;
    if (absl::Status s = WriteLease(db, renewed); !s.ok()) return s;
    return renewed;
  });
}

absl::Status SqliteStore::ReleaseShardLease(int shard, std::string_view owner, int64_t epoch) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, 1); !s.ok()) return s;
  return InWriteTransaction<bool>([&](Db& db) -> absl::StatusOr<bool> {
           absl::StatusOr<std::optional<ShardLease>> current = ReadLease(db, shard);
           if (!current.ok()) return current.status();
           if (!current->has_value() || (*current)->owner != owner ||
               (*current)->epoch != epoch) {
             return true;  // someone else's now: nothing of ours to end
           }
           ShardLease released = **current;
           released.expires_at_ms = 0;
           if (absl::Status s = WriteLease(db, released); !s.ok()) return s;
           return true;
         })
      .status();
}

absl::StatusOr<std::vector<ShardLease>> SqliteStore::ListShardLeases() {
  // Rare (routing refreshes, tools): the writer serves it.
  using Leases = std::vector<ShardLease>;
  return InWriteTransaction<Leases>([&](Db& db) -> absl::StatusOr<Leases> {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kSelectAllLeases);
    if (!select.ok()) return select.status();
    Leases leases;
    for (;;) {
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      leases.push_back(LeaseFromRow(*select));
    }
    return leases;
  });
}

absl::Status SqliteStore::AnnounceNode(std::string_view node_id, std::string_view address,
                                       int64_t ttl_ms) {
  if (ttl_ms < 0) return absl::InvalidArgumentError("announcement ttl must be >= 0");
  if (absl::Status s = storage_internal::CheckLeaseRequest(0, node_id, /*ttl_ms=*/1); !s.ok()) return s;
  return InWriteTransaction<bool>([&](Db& db) -> absl::StatusOr<bool> {
           absl::StatusOr<SqliteStatement> upsert = db.Prepare(kUpsertNode);
           if (!upsert.ok()) return upsert.status();
           for (absl::Status s : {upsert->BindText(1, node_id), upsert->BindText(2, address),
                                  upsert->BindInt64(3, NowMs() + ttl_ms)}) {
             if (!s.ok()) return s;
           }
           absl::StatusOr<bool> done = upsert->Step();
           if (!done.ok()) return done.status();
           return true;
         })
      .status();
}

absl::StatusOr<std::vector<ClusterNode>> SqliteStore::ListLiveNodes() {
  using Nodes = std::vector<ClusterNode>;
  return InWriteTransaction<Nodes>([&](Db& db) -> absl::StatusOr<Nodes> {
    absl::StatusOr<SqliteStatement> select = db.Prepare(kSelectLiveNodes);
    if (!select.ok()) return select.status();
    if (absl::Status s = select->BindInt64(1, NowMs()); !s.ok()) return s;
    Nodes nodes;
    for (;;) {
      absl::StatusOr<bool> row = select->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      nodes.push_back(ClusterNode{select->ColumnString(0), select->ColumnString(1)});
    }
    return nodes;
  });
}

}  // namespace roomsync

#include "storage/postgres_store.h"

#include <algorithm>
#include <limits>
#include <pqxx/pqxx>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "absl/container/flat_hash_map.h"
#include "storage/commit_request.h"
#include "storage/document_digest.h"
#include "storage/group_queue.h"
#include "storage/migrations.h"
#include "storage/pg_text_array.h"
#include "storage/postgres_statements.h"
#include "storage/request_checks.h"
#include "storage/room_epoch.h"

namespace roomsync {
namespace storage_internal {

// One Store::OpenRoom call waiting in (or being run by) a group.
struct OpenRoomRequest {
  std::string_view room;
  std::string epoch;  // for the room if it is created
  size_t bytes = 0;
  absl::StatusOr<RoomHead> result{absl::UnknownError("open did not run")};
  bool done = false;  // guarded by the queue's mutex
};

// One Store::Lookup call waiting in (or being run by) a lookup group.
struct LookupRequest {
  std::string_view room;
  std::span<const DocumentKey> keys;
  size_t bytes = 0;
  absl::StatusOr<std::vector<std::optional<StoredDocument>>> result{
      absl::UnknownError("lookup did not run")};
  bool done = false;  // guarded by the queue's mutex
};

}  // namespace storage_internal

namespace {

using storage_internal::CommitRequest;
using storage_internal::GroupLimits;
using storage_internal::GroupQueue;
using storage_internal::LookupRequest;
using storage_internal::OpenRoomRequest;
using storage_internal::PgArrayLiteral;

// A group's statement is about as cheap as one request's, so take what
// queued up, one group at a time: against two at a time (64 clients on 64
// rooms, and 16 on 16, several runs each), one gave about 25% more
// pushes/s at about 20% less CPU per push, because the groups were larger.
// A room appears once per commit group: its fence is checked once per
// statement.
constexpr GroupLimits kCommitGroupLimits{
    .max_requests = 64, .max_bytes = 16 << 20, .max_running_groups = 1, .distinct_rooms = true};
constexpr GroupLimits kLookupGroupLimits{
    .max_requests = 64, .max_bytes = 4 << 20, .max_running_groups = 1, .distinct_rooms = false};
constexpr GroupLimits kOpenRoomGroupLimits{
    .max_requests = 64, .max_bytes = 1 << 20, .max_running_groups = 1, .distinct_rooms = false};
using namespace storage_internal::postgres_sql;  // NOLINT: the statements

// pg_advisory_xact_lock key serializing migrations: "roomsync" in ASCII.
constexpr int64_t kMigrationLockKey = 0x726f6f6d73796e63;

void PrepareStatements(pqxx::connection& conn) {
  {
    pqxx::nontransaction tx(conn);
    tx.exec(kSessionSetupSql);
  }
  conn.prepare("open_rooms", kOpenRoomsSql);
  conn.prepare("commit", kCommitSql);
  conn.prepare("commit_new_keys", kCommitNewKeysSql);
  conn.prepare("create_and_commit", kCreateAndCommitSql);
  conn.prepare("acquire_lease", kAcquireLeaseSql);
  conn.prepare("renew_lease", kRenewLeaseSql);
  conn.prepare("release_lease", kReleaseLeaseSql);
  conn.prepare("lease", kLeaseSql);
  conn.prepare("all_leases", kAllLeasesSql);
  conn.prepare("announce_node", kAnnounceNodeSql);
  conn.prepare("live_nodes", kLiveNodesSql);
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

// Documents to write, one array per column, in the order the commit and
// import statements unnest them (`rooms` only for a group of commits).
struct DocumentColumns {
  PgArrayLiteral rooms, collections, ids, seqs, timestamps, deleted, jsons;

  void Add(const StoredDocument& doc) {
    collections.AddText(doc.collection);
    ids.AddText(doc.id);
    seqs.AddInt64(doc.seq);
    timestamps.AddInt64(doc.timestamp_ms);
    deleted.AddBool(doc.deleted);
    jsons.AddBytes(doc.json);
  }

  void Add(const CommitRequest& request) {
    for (const StoredDocument& doc : request.documents) {
      rooms.AddText(request.room);
      Add(doc);
    }
  }
};

// A grouped commit statement failed as a whole and wrote nothing. When the
// cause may be one request's (bad data, a racing writer's unique seq, a
// stored key among "new" ones), `redo_alone` commits each by itself, so
// that the others are not refused for it; else all share the failure.
template <typename RedoAlone>
void FailGroup(std::span<CommitRequest* const> group, const absl::Status& failure,
               RedoAlone redo_alone) {
  const absl::StatusCode code = failure.code();
  if (group.size() > 1 &&
      (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kAborted ||
       code == absl::StatusCode::kAlreadyExists)) {
    for (CommitRequest* request : group) redo_alone(request);
    return;
  }
  for (CommitRequest* request : group) request->result = failure;
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

ShardLease LeaseFromRow(const pqxx::row& row) {
  return ShardLease{row[0].as<int>(), row[1].as<std::string>(), row[2].as<std::string>(),
                    row[3].as<int64_t>(), row[4].as<int64_t>()};
}


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
    : pool_(url, max_connections, &PrepareStatements),
      opens_(std::make_unique<GroupQueue<OpenRoomRequest>>(kOpenRoomGroupLimits)),
      lookups_(std::make_unique<GroupQueue<LookupRequest>>(kLookupGroupLimits)),
      commits_(std::make_unique<GroupQueue<CommitRequest>>(kCommitGroupLimits)),
      new_key_commits_(std::make_unique<GroupQueue<CommitRequest>>(kCommitGroupLimits)),
      creates_(std::make_unique<GroupQueue<CommitRequest>>(kCommitGroupLimits)) {}

PostgresStore::~PostgresStore() = default;

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
  // A room that lost a creation race gets no row the first time; the
  // second statement sees the winner's.
  for (int attempt = 0; attempt < 2; ++attempt) {
    OpenRoomRequest request;
    request.room = room;
    request.epoch = *epoch;
    request.bytes = room.size() + epoch->size();
    opens_->Submit(request,
                   [this](std::span<OpenRoomRequest* const> group) { OpenRoomGroup(group); });
    if (request.result.ok() || request.result.status().code() != absl::StatusCode::kNotFound) {
      return request.result;
    }
  }
  return absl::InternalError("room neither created nor found");
}

void PostgresStore::OpenRoomGroup(std::span<OpenRoomRequest* const> group) {
  PgArrayLiteral rooms, epochs;
  for (const OpenRoomRequest* request : group) {
    rooms.AddText(request->room);
    epochs.AddText(request->epoch);
  }
  const std::string rooms_param = std::move(rooms).Finish();
  const std::string epochs_param = std::move(epochs).Finish();
  using Heads = absl::flat_hash_map<std::string, RoomHead>;
  absl::StatusOr<Heads> heads =
      Run<Heads>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Heads> {
        pqxx::nontransaction tx(conn);
        Heads heads;
        for (const pqxx::row& row : tx.exec_prepared("open_rooms", rooms_param, epochs_param)) {
          heads[row[0].as<std::string>()] =
              RoomHead{row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<int64_t>(),
                       row[4].as<int64_t>(), static_cast<uint64_t>(row[5].as<int64_t>())};
        }
        return heads;
      });
  for (OpenRoomRequest* request : group) {
    if (!heads.ok()) {
      request->result = heads.status();
      continue;
    }
    auto it = heads->find(ToAbsl(request->room));
    request->result = it != heads->end()
                          ? absl::StatusOr<RoomHead>(it->second)
                          : absl::NotFoundError("room created by a concurrent writer");
  }
}

absl::StatusOr<std::vector<std::optional<StoredDocument>>> PostgresStore::Lookup(
    std::string_view room, std::span<const DocumentKey> keys) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  LookupRequest request;
  request.room = room;
  request.keys = keys;
  for (const DocumentKey& key : keys) {
    if (absl::Status s = storage_internal::CheckKey(key.collection, key.id); !s.ok()) {
      return s;
    }
    request.bytes += room.size() + key.collection.size() + key.id.size();
  }
  if (keys.empty()) return std::vector<std::optional<StoredDocument>>();
  lookups_->Submit(request, [this](std::span<LookupRequest* const> group) { LookupGroup(group); });
  return std::move(request.result);
}

void PostgresStore::LookupGroup(std::span<LookupRequest* const> group) {
  // first_key[i]: the 0-based position of request i's first key in the
  // statement's arrays (ord - 1).
  std::vector<size_t> first_key;
  first_key.reserve(group.size());
  PgArrayLiteral rooms, collections, ids;
  size_t total = 0;
  for (const LookupRequest* request : group) {
    first_key.push_back(total);
    for (const DocumentKey& key : request->keys) {
      rooms.AddText(request->room);
      collections.AddText(key.collection);
      ids.AddText(key.id);
    }
    total += request->keys.size();
  }
  const std::string rooms_param = std::move(rooms).Finish();
  const std::string collections_param = std::move(collections).Finish();
  const std::string ids_param = std::move(ids).Finish();
  using Found = std::vector<std::vector<std::optional<StoredDocument>>>;
  absl::StatusOr<Found> found = Run<Found>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Found> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = tx.exec_prepared("lookup", rooms_param, collections_param, ids_param);
    Found found(group.size());
    for (size_t i = 0; i < group.size(); ++i) found[i].resize(group[i]->keys.size());
    for (const pqxx::row& row : rows) {
      int64_t ord = row[0].as<int64_t>();  // 1-based
      if (ord < 1 || ord > static_cast<int64_t>(total)) {
        return absl::InternalError("lookup returned an unknown key");
      }
      const size_t key = static_cast<size_t>(ord - 1);
      const size_t owner =
          std::upper_bound(first_key.begin(), first_key.end(), key) - first_key.begin() - 1;
      found[owner][key - first_key[owner]] = DocumentFromRow(row, 1);
    }
    return found;
  });
  for (size_t i = 0; i < group.size(); ++i) {
    if (found.ok()) {
      group[i]->result = std::move((*found)[i]);
    } else {
      group[i]->result = found.status();
    }
  }
}

absl::Status PostgresStore::Commit(std::string_view room, const CommitFence& fence,
                                   std::span<const StoredDocument> documents,
                                   int64_t stored_bytes_delta, uint64_t digest_delta) {
  // Validation errors are this request's alone: decided before it can
  // join a group with other rooms' commits.
  if (absl::Status s = storage_internal::CheckCommit(room, fence, documents); !s.ok()) {
    return s;
  }
  CommitRequest request(room, fence, documents, stored_bytes_delta, digest_delta);
  const bool new_keys = fence.keys_are_new;
  (new_keys ? new_key_commits_ : commits_)
      ->Submit(request, [this, new_keys](std::span<CommitRequest* const> group) {
        CommitGroup(group, new_keys);
      });
  return request.result;
}

void PostgresStore::CommitGroup(std::span<CommitRequest* const> group, bool keys_are_new) {
  PgArrayLiteral rooms, expected, new_last, deltas, digest_deltas, shards, lease_epochs;
  DocumentColumns documents;
  for (const CommitRequest* request : group) {
    rooms.AddText(request->room);
    shards.AddInt64(request->fence.shard);
    lease_epochs.AddInt64(request->fence.lease_epoch);
    expected.AddInt64(request->fence.expected_last_seq);
    new_last.AddInt64(request->NewLastSeq());
    deltas.AddInt64(request->stored_bytes_delta);
    // The bits as a signed BIGINT: XOR does not care.
    digest_deltas.AddInt64(static_cast<int64_t>(request->digest_delta));
    documents.Add(*request);
  }
  // Written documents per fenced room; a room missing from it lost its fence.
  using Written = absl::flat_hash_map<std::string, int64_t>;
  absl::StatusOr<Written> written =
      Run<Written>(true, [&](pqxx::connection& conn) -> absl::StatusOr<Written> {
        // Autocommit: the statement's implicit transaction is the commit,
        // so the whole group costs one round trip (no BEGIN/COMMIT).
        pqxx::nontransaction tx(conn);
        pqxx::result r;
        try {
          r = tx.exec_prepared(
              keys_are_new ? "commit_new_keys" : "commit", std::move(rooms).Finish(),
              std::move(expected).Finish(), std::move(new_last).Finish(),
              std::move(deltas).Finish(), std::move(documents.rooms).Finish(),
              std::move(documents.collections).Finish(), std::move(documents.ids).Finish(),
              std::move(documents.seqs).Finish(), std::move(documents.timestamps).Finish(),
              std::move(documents.deleted).Finish(), std::move(documents.jsons).Finish(),
              std::move(shards).Finish(),
              std::move(lease_epochs).Finish(), std::move(digest_deltas).Finish());
        } catch (const pqxx::unique_violation&) {
          // The statement rolled back whole. The fences hold every room's
          // seqs against other writers, so the duplicate is a stored key.
          if (keys_are_new) return absl::AlreadyExistsError("a document's key is already stored");
          throw;
        }
        Written written;
        for (const pqxx::row& row : r) written[row[0].as<std::string>()] = row[1].as<int64_t>();
        return written;
      });
  if (!written.ok()) {
    FailGroup(group, written.status(), [this, keys_are_new](CommitRequest* request) {
      CommitGroup(std::span(&request, 1), keys_are_new);
    });
    return;
  }
  for (CommitRequest* request : group) {
    auto it = written->find(ToAbsl(request->room));
    if (it == written->end()) {
      request->result = FenceFailure(*request);
    } else if (it->second != static_cast<int64_t>(request->documents.size())) {
      request->result = absl::InternalError(
          absl::StrCat("commit wrote ", it->second, " rows instead of ", request->documents.size(),
                       " (a group of ", group.size(), ")"));
    } else {
      request->result = absl::OkStatus();
    }
  }
}

absl::StatusOr<std::optional<RoomHead>> PostgresStore::CreateRoomAndCommit(
    std::string_view room, std::string_view epoch, const CommitFence& fence,
    std::span<const StoredDocument> documents, int64_t stored_bytes_delta,
    uint64_t digest_delta) {
  CommitFence first = fence;
  first.expected_last_seq = 0;
  first.keys_are_new = true;
  if (absl::Status s = storage_internal::CheckCommit(room, first, documents); !s.ok()) return s;
  if (epoch.empty()) return absl::InvalidArgumentError("CreateRoomAndCommit needs an epoch");
  CommitRequest request(room, first, documents, stored_bytes_delta, digest_delta);
  request.create_epoch = epoch;
  creates_->Submit(request,
                   [this](std::span<CommitRequest* const> group) { CreateAndCommitGroup(group); });
  if (!request.result.ok()) return request.result;
  return std::move(request.existing);
}

void PostgresStore::CreateAndCommitGroup(std::span<CommitRequest* const> group) {
  PgArrayLiteral rooms, epochs, last_seqs, stored_bytes, digests, shards, lease_epochs;
  DocumentColumns documents;
  for (const CommitRequest* request : group) {
    rooms.AddText(request->room);
    epochs.AddText(request->create_epoch);
    last_seqs.AddInt64(request->NewLastSeq());
    stored_bytes.AddInt64(request->stored_bytes_delta);
    digests.AddInt64(static_cast<int64_t>(request->digest_delta));
    shards.AddInt64(request->fence.shard);
    lease_epochs.AddInt64(request->fence.lease_epoch);
    documents.Add(*request);
  }
  struct Answer {
    int64_t written = 0;  // -1: the room existed (head)
    RoomHead head;
  };
  using Answers = absl::flat_hash_map<std::string, Answer>;
  absl::StatusOr<Answers> answers =
      Run<Answers>(true, [&](pqxx::connection& conn) -> absl::StatusOr<Answers> {
        pqxx::nontransaction tx(conn);
        pqxx::result r = tx.exec_prepared(
            "create_and_commit", std::move(rooms).Finish(), std::move(epochs).Finish(),
            std::move(last_seqs).Finish(), std::move(stored_bytes).Finish(),
            std::move(digests).Finish(), std::move(shards).Finish(),
            std::move(lease_epochs).Finish(), std::move(documents.rooms).Finish(),
            std::move(documents.collections).Finish(), std::move(documents.ids).Finish(),
            std::move(documents.seqs).Finish(), std::move(documents.timestamps).Finish(),
            std::move(documents.deleted).Finish(), std::move(documents.jsons).Finish());
        Answers answers;
        for (const pqxx::row& row : r) {
          Answer& answer = answers[row[0].as<std::string>()];
          answer.written = row[1].as<int64_t>();
          if (answer.written < 0) {
            answer.head = RoomHead{row[2].as<std::string>(), row[3].as<int64_t>(),
                                   row[4].as<int64_t>(), row[5].as<int64_t>(),
                                   static_cast<uint64_t>(row[6].as<int64_t>())};
          }
        }
        return answers;
      });
  if (!answers.ok()) {
    FailGroup(group, answers.status(),
              [this](CommitRequest* request) { CreateAndCommitGroup(std::span(&request, 1)); });
    return;
  }
  for (CommitRequest* request : group) {
    auto it = answers->find(ToAbsl(request->room));
    if (it == answers->end()) {
      // Not created, not there before: the lease was lost, or a concurrent
      // creator's row was not in the snapshot.
      absl::Status lost = request->fence.lease_epoch != 0 ? FenceFailure(*request) : absl::OkStatus();
      request->result = lost.ok() || lost.code() == absl::StatusCode::kAborted
                            ? absl::AbortedError("the room was created by a concurrent writer")
                            : lost;
    } else if (it->second.written < 0) {
      request->existing = it->second.head;
      request->result = absl::OkStatus();
    } else if (it->second.written != static_cast<int64_t>(request->documents.size())) {
      request->result = absl::InternalError(absl::StrCat(
          "create_and_commit wrote ", it->second.written, " rows instead of ",
          request->documents.size()));
    } else {
      request->result = absl::OkStatus();
    }
  }
}

absl::Status PostgresStore::FenceFailure(const CommitRequest& request) {
  // Rare: tell a lost lease (the node must stop writing the shard) from a
  // moved last_seq (the room must reload) with one more read.
  if (request.fence.lease_epoch != 0) {
    absl::StatusOr<std::vector<ShardLease>> lease = ReadLeases(request.fence.shard);
    if (!lease.ok()) return lease.status();
    if (lease->empty() || lease->front().epoch != request.fence.lease_epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("shard ", request.fence.shard, " lease epoch ",
                       request.fence.lease_epoch, " was taken by another node"));
    }
  }
  return absl::AbortedError("room's last_seq moved past the commit fence");
}

absl::StatusOr<std::vector<ShardLease>> PostgresStore::ReadLeases(std::optional<int> shard) {
  using Leases = std::vector<ShardLease>;
  return Run<Leases>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Leases> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = shard.has_value() ? tx.exec_prepared("lease", *shard)
                                          : tx.exec_prepared("all_leases");
    Leases leases;
    for (const pqxx::row& row : rows) leases.push_back(LeaseFromRow(row));
    return leases;
  });
}

absl::StatusOr<ShardLease> PostgresStore::AcquireShardLease(int shard, std::string_view owner,
                                                            std::string_view address,
                                                            int64_t ttl_ms) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, ttl_ms); !s.ok()) return s;
  absl::StatusOr<std::optional<ShardLease>> taken = Run<std::optional<ShardLease>>(
      true, [&](pqxx::connection& conn) -> absl::StatusOr<std::optional<ShardLease>> {
        pqxx::nontransaction tx(conn);
        pqxx::result rows =
            tx.exec_prepared("acquire_lease", shard, Text(owner), Text(address), ttl_ms);
        if (rows.empty()) return std::nullopt;
        return LeaseFromRow(rows[0]);
      });
  if (!taken.ok()) return taken.status();
  if (taken->has_value()) return **taken;
  absl::StatusOr<std::vector<ShardLease>> holder = ReadLeases(shard);
  if (!holder.ok()) return holder.status();
  if (holder->empty()) return absl::InternalError("shard lease neither taken nor held");
  return holder->front();
}

absl::StatusOr<ShardLease> PostgresStore::RenewShardLease(int shard, std::string_view owner,
                                                          int64_t epoch, int64_t ttl_ms) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, ttl_ms); !s.ok()) return s;
  absl::StatusOr<std::optional<ShardLease>> renewed = Run<std::optional<ShardLease>>(
      true, [&](pqxx::connection& conn) -> absl::StatusOr<std::optional<ShardLease>> {
        pqxx::nontransaction tx(conn);
        pqxx::result rows = tx.exec_prepared("renew_lease", shard, Text(owner), epoch, ttl_ms);
        if (rows.empty()) return std::nullopt;
        return LeaseFromRow(rows[0]);
      });
  if (!renewed.ok()) return renewed.status();
  if (!renewed->has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("shard ", shard, " lease epoch ", epoch, " is no longer this node's"));
  }
  return **renewed;
}

absl::Status PostgresStore::ReleaseShardLease(int shard, std::string_view owner, int64_t epoch) {
  if (absl::Status s = storage_internal::CheckLeaseRequest(shard, owner, 1); !s.ok()) return s;
  return Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
           pqxx::nontransaction tx(conn);
           tx.exec_prepared("release_lease", shard, Text(owner), epoch);
           return true;
         })
      .status();
}

absl::StatusOr<std::vector<ShardLease>> PostgresStore::ListShardLeases() {
  return ReadLeases(std::nullopt);
}

absl::Status PostgresStore::AnnounceNode(std::string_view node_id, std::string_view address,
                                         int64_t ttl_ms) {
  if (ttl_ms < 0) return absl::InvalidArgumentError("announcement ttl must be >= 0");
  if (absl::Status s = storage_internal::CheckLeaseRequest(0, node_id, /*ttl_ms=*/1); !s.ok()) return s;
  return Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
           pqxx::nontransaction tx(conn);
           tx.exec_prepared("announce_node", Text(node_id), Text(address), ttl_ms);
           return true;
         })
      .status();
}

absl::StatusOr<std::vector<ClusterNode>> PostgresStore::ListLiveNodes() {
  using Nodes = std::vector<ClusterNode>;
  return Run<Nodes>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Nodes> {
    pqxx::nontransaction tx(conn);
    Nodes nodes;
    for (const pqxx::row& row : tx.exec_prepared("live_nodes")) {
      nodes.push_back(ClusterNode{row[0].as<std::string>(), row[1].as<std::string>()});
    }
    return nodes;
  });
}

absl::Status PostgresStore::Ping() {
  absl::StatusOr<int64_t> applied =
      Run<int64_t>(false, [](pqxx::connection& conn) -> absl::StatusOr<int64_t> {
        pqxx::nontransaction tx(conn);
        return tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0]
            .as<int64_t>();
      });
  if (!applied.ok()) return applied.status();
  return storage_internal::CheckSchemaVersion(*applied, storage_internal::PostgresMigrations());
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

// The operators' calls: plain (unprepared) statements, run rarely enough
// that preparing them on every pooled connection would cost more.
namespace {

// A page of rooms with their figures; LATERAL counts each room's documents
// by the primary key's room prefix, and the last write is one probe of the
// (room, seq) index.
constexpr const char* kRoomSummariesSql = R"sql(
SELECT r.room, r.epoch, r.last_seq, r.stored_bytes, a.n, a.deleted, a.bytes, a.min_seq,
       a.max_seq, a.distinct_seqs,
       coalesce((SELECT d.timestamp_ms FROM documents d
                 WHERE d.room = r.room AND d.seq = a.max_seq AND d.seq > 0), 0),
       r.compacted_through, r.digest, a.document_digest
FROM rooms r CROSS JOIN LATERAL (
  SELECT count(*) AS n, count(*) FILTER (WHERE d.deleted) AS deleted,
         coalesce(sum(octet_length(d.json)), 0)::bigint AS bytes,
         coalesce(min(d.seq), 0) AS min_seq, coalesce(max(d.seq), 0) AS max_seq,
         count(DISTINCT d.seq) AS distinct_seqs,
         coalesce(bit_xor()sql" ROOMSYNC_PG_DOCUMENT_DIGEST(d) R"sql() FILTER (WHERE NOT d.deleted), 0)
           AS document_digest
  FROM documents d WHERE d.room = r.room) a
)sql";

RoomSummary SummaryFromRow(const pqxx::row& row) {
  RoomSummary summary;
  summary.room = row[0].as<std::string>();
  summary.head = RoomHead{row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<int64_t>(),
                          row[11].as<int64_t>(), static_cast<uint64_t>(row[12].as<int64_t>())};
  summary.document_digest = static_cast<uint64_t>(row[13].as<int64_t>());
  summary.documents = row[4].as<int64_t>();
  summary.deleted_documents = row[5].as<int64_t>();
  summary.document_bytes = row[6].as<int64_t>();
  summary.min_seq = row[7].as<int64_t>();
  summary.max_seq = row[8].as<int64_t>();
  summary.distinct_seqs = row[9].as<int64_t>();
  summary.last_write_ms = row[10].as<int64_t>();
  return summary;
}

}  // namespace

absl::StatusOr<std::vector<RoomSummary>> PostgresStore::ListRooms(std::string_view after,
                                                                  int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit must be positive");
  if (absl::Status s = storage_internal::CheckKey(after, ""); !s.ok()) return s;
  using Page = std::vector<RoomSummary>;
  return Run<Page>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Page> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = tx.exec_params(
        absl::StrCat(kRoomSummariesSql, " WHERE r.room > $1 ORDER BY r.room LIMIT $2"),
        Text(after), limit);
    Page page;
    for (const pqxx::row& row : rows) page.push_back(SummaryFromRow(row));
    return page;
  });
}

absl::StatusOr<std::optional<RoomSummary>> PostgresStore::DescribeRoom(std::string_view room) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  using Found = std::optional<RoomSummary>;
  return Run<Found>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Found> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = tx.exec_params(absl::StrCat(kRoomSummariesSql, " WHERE r.room = $1"),
                                       Text(room));
    if (rows.empty()) return std::nullopt;
    return SummaryFromRow(rows[0]);
  });
}

absl::Status PostgresStore::ExportRoom(std::string_view room, int page_size,
                                       ExportSink& sink) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  if (page_size <= 0) return absl::InvalidArgumentError("page_size must be positive");
  // writes=true only so that Run does not retry on a lost connection: the
  // sink has already been given pages, and a second pass would repeat them.
  return Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
           // One snapshot for the head and every page.
           pqxx::transaction<pqxx::isolation_level::repeatable_read,
                             pqxx::readwrite_policy::read_only>
               tx(conn);
           pqxx::result head = tx.exec_params(
               "SELECT epoch, last_seq, stored_bytes, compacted_through, digest FROM rooms "
               "WHERE room = $1",
               Text(room));
           if (head.empty()) return absl::NotFoundError("no such room");
           if (absl::Status s = sink.Head(RoomHead{
                   head[0][0].as<std::string>(), head[0][1].as<int64_t>(),
                   head[0][2].as<int64_t>(), head[0][3].as<int64_t>(),
                   static_cast<uint64_t>(head[0][4].as<int64_t>())});
               !s.ok()) {
             return s;
           }
           Seq after = 0;
           while (true) {
             pqxx::result rows = tx.exec_prepared("since_all", Text(room), after, page_size);
             if (rows.empty()) break;
             std::vector<StoredDocument> page;
             page.reserve(rows.size());
             for (const pqxx::row& row : rows) page.push_back(DocumentFromRow(row, 0));
             after = page.back().seq;
             const bool last = static_cast<int>(page.size()) < page_size;
             if (absl::Status s = sink.Page(std::move(page)); !s.ok()) return s;
             if (last) break;
           }
           tx.commit();
           return true;
         })
      .status();
}

absl::Status PostgresStore::ImportRoom(std::string_view room, const RoomHead& head,
                                       std::span<const StoredDocument> documents) {
  if (absl::Status s = storage_internal::CheckImport(room, head, documents); !s.ok()) return s;
  std::string epoch = head.epoch;
  if (epoch.empty()) {
    absl::StatusOr<std::string> fresh = storage_internal::NewRoomEpoch();
    if (!fresh.ok()) return fresh.status();
    epoch = *std::move(fresh);
  }
  int64_t stored_bytes = 0;
  uint64_t digest = 0;
  DocumentColumns columns;
  for (const StoredDocument& doc : documents) {
    stored_bytes += static_cast<int64_t>(doc.json.size());
    digest ^= DocumentDigest(doc);
    columns.Add(doc);
  }
  const std::string collections_param = std::move(columns.collections).Finish();
  const std::string ids_param = std::move(columns.ids).Finish();
  const std::string seqs_param = std::move(columns.seqs).Finish();
  const std::string timestamps_param = std::move(columns.timestamps).Finish();
  const std::string deleted_param = std::move(columns.deleted).Finish();
  const std::string jsons_param = std::move(columns.jsons).Finish();
  return Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
           pqxx::work tx(conn);
           tx.exec_params(
               "INSERT INTO rooms (room, epoch, last_seq) VALUES ($1, $2, 0) "
               "ON CONFLICT (room) DO NOTHING",
               Text(room), epoch);
           // FOR UPDATE holds the room row to the end: a commit of the room
           // (its fence is an UPDATE of this row) waits, then fails its
           // fence on the imported last_seq.
           pqxx::result current =
               tx.exec_params("SELECT last_seq FROM rooms WHERE room = $1 FOR UPDATE", Text(room));
           if (current.empty()) return absl::InternalError("room vanished after insert");
           if (const int64_t last = current[0][0].as<int64_t>(); last != 0) {
             return absl::FailedPreconditionError(absl::StrCat(
                 "the room is not empty (last_seq ", last, "); import needs a new or empty room"));
           }
           if (!tx.exec_params("SELECT 1 FROM documents WHERE room = $1 LIMIT 1", Text(room))
                    .empty()) {
             return absl::FailedPreconditionError(
                 "the room holds documents; import needs a new or empty room");
           }
           tx.exec_params(
               "UPDATE rooms SET epoch = $2, last_seq = $3, stored_bytes = $4, "
               "compacted_through = $5, digest = $6 WHERE room = $1",
               Text(room), epoch, head.last_seq, stored_bytes, head.compacted_through,
               static_cast<int64_t>(digest));
           tx.exec_params(
               "INSERT INTO documents (room, collection, id, seq, timestamp_ms, deleted, json) "
               "SELECT $1, c, i, s, t, x, j FROM unnest($2::text[], $3::text[], $4::bigint[], "
               "$5::bigint[], $6::boolean[], $7::bytea[]) AS u(c, i, s, t, x, j)",
               Text(room), collections_param, ids_param, seqs_param, timestamps_param,
               deleted_param, jsons_param);
           tx.commit();
           return true;
         })
      .status();
}

absl::StatusOr<CompactionResult> PostgresStore::CompactRoom(std::string_view room,
                                                           const CommitFence& fence,
                                                           int64_t tombstones_before_ms,
                                                           Seq through_seq) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  return Run<CompactionResult>(
      true, [&](pqxx::connection& conn) -> absl::StatusOr<CompactionResult> {
        pqxx::work tx(conn);
        // The same fence as a commit's (postgres_statements.h): FOR SHARE
        // makes a node taking the shard wait for this transaction, FOR
        // UPDATE orders it against the room's commits.
        if (fence.lease_epoch != 0) {
          pqxx::result lease = tx.exec_params(
              "SELECT epoch FROM shard_leases WHERE shard = $1 FOR SHARE", fence.shard);
          if (lease.empty() || lease[0][0].as<int64_t>() != fence.lease_epoch) {
            return absl::FailedPreconditionError(absl::StrCat(
                "shard ", fence.shard, " lease epoch ", fence.lease_epoch,
                " was taken by another node"));
          }
        }
        pqxx::result current = tx.exec_params(
            "SELECT last_seq FROM rooms WHERE room = $1 FOR UPDATE", Text(room));
        if (current.empty()) return absl::AbortedError("room was never opened");
        if (current[0][0].as<int64_t>() != fence.expected_last_seq) {
          return absl::AbortedError("room's last_seq moved past the compaction's fence");
        }
        pqxx::result done = tx.exec_params(
            "WITH removed AS ("
            " DELETE FROM documents WHERE room = $1 AND deleted AND timestamp_ms < $2"
            " AND seq <= $3"
            " RETURNING seq, octet_length(json) AS bytes"
            "), totals AS ("
            " SELECT count(*) AS n, coalesce(sum(bytes), 0)::bigint AS bytes,"
            " coalesce(max(seq), 0) AS max_seq FROM removed"
            ") UPDATE rooms r SET stored_bytes = r.stored_bytes - t.bytes,"
            " compacted_through = greatest(r.compacted_through, t.max_seq)"
            " FROM totals t WHERE r.room = $1"
            " RETURNING t.n, t.bytes, r.compacted_through",
            Text(room), tombstones_before_ms, through_seq);
        if (done.empty()) return absl::InternalError("room vanished during compaction");
        CompactionResult result;
        result.removed = done[0][0].as<int64_t>();
        result.removed_bytes = done[0][1].as<int64_t>();
        result.compacted_through = done[0][2].as<int64_t>();
        tx.commit();
        return result;
      });
}

absl::Status PostgresStore::PutSnapshot(std::string_view room, const RoomSnapshot& snapshot,
                                        int keep) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  if (keep < 1) return absl::InvalidArgumentError("keep must be at least 1");
  if (snapshot.seq < 0) return absl::InvalidArgumentError("a snapshot's seq must be >= 0");
  return Run<bool>(true, [&](pqxx::connection& conn) -> absl::StatusOr<bool> {
           pqxx::work tx(conn);
           // FOR SHARE: the head checked stays the room's head until the
           // snapshot is stored (a commit, an UPDATE of the row, waits).
           pqxx::result head = tx.exec_params(
               "SELECT epoch, last_seq FROM rooms WHERE room = $1 FOR SHARE", Text(room));
           if (head.empty()) return absl::FailedPreconditionError("no such room");
           if (head[0][0].as<std::string>() != snapshot.epoch) {
             return absl::FailedPreconditionError("the snapshot is of another epoch of the room");
           }
           if (snapshot.seq > head[0][1].as<int64_t>()) {
             return absl::FailedPreconditionError(
                 absl::StrCat("the snapshot's seq ", snapshot.seq,
                              " is above the room's last seq ", head[0][1].as<int64_t>()));
           }
           tx.exec_params(
               "INSERT INTO room_snapshots (room, seq, epoch, bytes) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (room, seq) DO UPDATE SET epoch = EXCLUDED.epoch, "
               "created_at = now(), bytes = EXCLUDED.bytes",
               Text(room), snapshot.seq, snapshot.epoch,
               pqxx::binarystring(snapshot.bytes.data(), snapshot.bytes.size()));
           tx.exec_params(
               "DELETE FROM room_snapshots WHERE room = $1 AND (epoch <> $2 OR seq NOT IN ("
               "SELECT seq FROM room_snapshots WHERE room = $1 AND epoch = $2 "
               "ORDER BY seq DESC LIMIT $3))",
               Text(room), snapshot.epoch, keep);
           tx.commit();
           return true;
         })
      .status();
}

absl::StatusOr<std::optional<RoomSnapshot>> PostgresStore::NewestSnapshot(std::string_view room) {
  if (absl::Status s = storage_internal::CheckRoom(room); !s.ok()) return s;
  using Found = std::optional<RoomSnapshot>;
  return Run<Found>(false, [&](pqxx::connection& conn) -> absl::StatusOr<Found> {
    pqxx::nontransaction tx(conn);
    pqxx::result rows = tx.exec_params(
        "SELECT s.seq, s.epoch, (extract(epoch FROM s.created_at) * 1000)::bigint, s.bytes "
        "FROM room_snapshots s JOIN rooms r ON r.room = s.room AND r.epoch = s.epoch "
        "WHERE s.room = $1 ORDER BY s.seq DESC LIMIT 1",
        Text(room));
    if (rows.empty()) return std::nullopt;
    pqxx::binarystring bytes(rows[0][3]);
    return RoomSnapshot{rows[0][1].as<std::string>(), rows[0][0].as<int64_t>(),
                        rows[0][2].as<int64_t>(),
                        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
  });
}

}  // namespace roomsync

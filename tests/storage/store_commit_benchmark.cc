// Commit throughput of both Store backends, next to the reference the
// design's push bar is stated against: a plain PostgreSQL loop of durable
// single-row upserts on the same server. Not a test; run by hand:
//
//   scripts/with-postgres.sh build/tests/storage/store_commit_benchmark
//   ... --benchmark_filter=ManyRooms   (the cross-room numbers only)
//
// items_per_second counts documents. Batch sizes show how close many small
// commits get to one large one (the room service's group commit relies on
// a batch costing about one fsync).
//
// BM_*CommitManyRooms: N threads, each committing one document at a time
// to its own room, as N clients pushing to N rooms do. commits_per_second
// is the node's total; it shows whether commits of different rooms share
// fsyncs (SQLite's cross-room write group, PostgreSQL's WAL group commit
// over enough pooled connections) or queue behind one another.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <span>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "storage/store.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync {
namespace {

constexpr int kKeys = 10'000;     // ids cycle, so most commits are updates
constexpr int kJsonBytes = 256;   // a typical small encrypted chat message

std::unique_ptr<Store> OpenOrDie(const std::string& url) {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url);
  if (!store.ok()) {
    fprintf(stderr, "OpenStore: %s\n", std::string(store.status().message()).c_str());
    std::abort();
  }
  return *std::move(store);
}

void CommitBatches(benchmark::State& state, const std::string& url) {
  std::unique_ptr<Store> store = OpenOrDie(url);
  const int batch_size = static_cast<int>(state.range(0));
  Seq last = store->OpenRoom("bench")->last_seq;
  std::vector<StoredDocument> batch(batch_size);
  int next_key = 0;
  for (auto _ : state) {
    for (StoredDocument& doc : batch) {
      doc = StoredDocument{"msgs", "m" + std::to_string(next_key++ % kKeys), 0, false,
                           ++last, std::string(kJsonBytes, 'x')};
    }
    absl::Status s = store->Commit("bench", CommitFence{last - batch_size}, batch,
                                   /*stored_bytes_delta=*/0, /*digest_delta=*/0);  // not measured
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
}

// One store per URL, shared by every thread of a multi-threaded run (the
// room service has one store for all its rooms). Never freed: benchmarks
// run until exit.
Store& SharedStore(const std::string& url) {
  static absl::Mutex mu;
  static auto* stores = new std::map<std::string, std::unique_ptr<Store>>();
  absl::MutexLock lock(&mu);
  std::unique_ptr<Store>& store = (*stores)[url];
  if (store == nullptr) store = OpenOrDie(url);
  return *store;
}

void CommitToOwnRoom(benchmark::State& state, const std::string& url) {
  Store& store = SharedStore(url);
  // Rooms outlive a run (google-benchmark repeats the function to size it),
  // so start from the room's current head.
  const std::string room = "room" + std::to_string(state.thread_index());
  absl::StatusOr<RoomHead> head = store.OpenRoom(room);
  if (!head.ok()) {
    state.SkipWithError(std::string(head.status().message()).c_str());
    return;
  }
  Seq last = head->last_seq;
  const std::string json(kJsonBytes, 'x');
  int next_key = 0;
  for (auto _ : state) {
    StoredDocument doc{"msgs", "m" + std::to_string(next_key++ % kKeys), 0, false,
                       last + 1, json};
    absl::Status s = store.Commit(room, CommitFence{last}, std::span(&doc, 1),
                                  /*stored_bytes_delta=*/0, /*digest_delta=*/0);  // not measured
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
    ++last;
  }
  state.SetItemsProcessed(state.iterations());
  // Summed over threads and divided by wall time: the node's commit rate.
  state.counters["commits_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_SqliteCommitManyRooms(benchmark::State& state) {
  static const std::string url = testing::TempSqliteUrl();
  CommitToOwnRoom(state, url);
}
BENCHMARK(BM_SqliteCommitManyRooms)->Threads(1)->Threads(16)->Threads(64)->UseRealTime();

void BM_PostgresCommitManyRooms(benchmark::State& state) {
  static const std::string url = testing::CreateTestDatabase();
  CommitToOwnRoom(state, url);
}
BENCHMARK(BM_PostgresCommitManyRooms)->Threads(1)->Threads(16)->Threads(64)->UseRealTime();

void BM_SqliteCommit(benchmark::State& state) {
  static const std::string url = testing::TempSqliteUrl();
  CommitBatches(state, url);
}
BENCHMARK(BM_SqliteCommit)->Arg(1)->Arg(16)->Arg(128)->UseRealTime();

void BM_PostgresCommit(benchmark::State& state) {
  static const std::string url = testing::CreateTestDatabase();
  CommitBatches(state, url);
}
BENCHMARK(BM_PostgresCommit)->Arg(1)->Arg(16)->Arg(128)->UseRealTime();

// The reference: one autocommit upsert per document, as an application
// without batching would write.
void BM_PlainPostgresUpsertLoop(benchmark::State& state) {
  static const std::string url = testing::CreateTestDatabase();
  pqxx::connection conn(url);
  pqxx::nontransaction(conn).exec(
      "CREATE TABLE IF NOT EXISTS plain (id TEXT PRIMARY KEY, seq BIGINT, json BYTEA)");
  conn.prepare("upsert",
               "INSERT INTO plain VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE "
               "SET seq = EXCLUDED.seq, json = EXCLUDED.json");
  const std::string json(kJsonBytes, 'x');
  int64_t seq = 0;
  for (auto _ : state) {
    ++seq;
    pqxx::nontransaction tx(conn);
    tx.exec_prepared("upsert", "m" + std::to_string(seq % kKeys), seq,
                     pqxx::binarystring(json));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PlainPostgresUpsertLoop)->UseRealTime();

}  // namespace
}  // namespace roomsync

BENCHMARK_MAIN();

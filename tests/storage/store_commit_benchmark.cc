// Commit throughput of both Store backends, next to the reference the
// design's push bar is stated against: a plain PostgreSQL loop of durable
// single-row upserts on the same server. Not a test; run by hand:
//
//   scripts/with-postgres.sh build/tests/storage/store_commit_benchmark
//
// items_per_second counts documents. Batch sizes show how close many small
// commits get to one large one (the room service's group commit relies on
// a batch costing about one fsync).
#include <benchmark/benchmark.h>

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

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
    absl::Status s = store->Commit("bench", CommitFence{last - batch_size}, batch);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
}

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

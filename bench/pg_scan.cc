// The pull bar's reference: the same rows read straight from PostgreSQL
// with the store's own keyset query (storage/postgres_statements.h
// kSinceCollectionSql), page by page, converting each row as the store
// does. Whatever the service adds on top of this is its overhead.
#include <chrono>
#include <cstdio>
#include <pqxx/pqxx>

#include "bench/reference_scenarios.h"
#include "storage/postgres_statements.h"

namespace roomsync::bench {

std::string RunPgScan(const PgScanOptions& options, JsonWriter& json) {
  pqxx::connection conn(options.pg_url);
  conn.prepare("since", storage_internal::postgres_sql::kSinceCollectionSql);
  Histogram page_latency;
  double best_s = 0;
  int64_t rows_per_pass = 0;
  int64_t pages = 0;
  for (int pass = 0; pass < options.passes; ++pass) {
    int64_t after = 0;
    int64_t rows = 0;
    pages = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const auto p0 = std::chrono::steady_clock::now();
      pqxx::nontransaction tx(conn);
      pqxx::result page = tx.exec_prepared("since", options.room, after, options.batch_size,
                                           options.collection);
      size_t bytes = 0;
      for (const pqxx::row& row : page) {
        std::string collection(row[0].c_str(), row[0].size());
        std::string id(row[1].c_str(), row[1].size());
        after = row[2].as<int64_t>();
        (void)row[3].as<int64_t>();
        (void)row[4].as<bool>();
        pqxx::binarystring doc(row[5]);
        bytes += doc.size() + collection.size() + id.size();
      }
      page_latency.Record(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - p0)
                              .count());
      ++pages;
      rows += page.size();
      if (page.empty()) break;
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (best_s == 0 || s < best_s) best_s = s;
    rows_per_pass = rows;
  }
  const double per_s = best_s > 0 ? rows_per_pass / best_s : 0.0;
  json.String("room", options.room)
      .Int("batch_size", options.batch_size)
      .Int("rows", rows_per_pass)
      .Int("pages", pages)
      .Double("best_pass_s", best_s)
      .Double("documents_per_s", per_s)
      .Latency("page_latency", page_latency);
  char buf[200];
  std::snprintf(buf, sizeof buf, "pg-scan: %lld rows in %.2f s = %.0f rows/s (page %d); page ",
                static_cast<long long>(rows_per_pass), best_s, per_s, options.batch_size);
  return buf + LatencySummary(page_latency);
}

}  // namespace roomsync::bench

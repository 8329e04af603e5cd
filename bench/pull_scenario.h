// pull: one client catching up a room of D documents from the beginning,
// batchSize B per request, each next request carrying the checkpoint of
// the last answer (what RxDB's pull handler does after an offline period).
// The room is seeded first with large pushes (also reported: it is the
// bulk-push throughput).
#ifndef ROOMSYNC_BENCH_PULL_SCENARIO_H_
#define ROOMSYNC_BENCH_PULL_SCENARIO_H_

#include <string>

#include "bench/histogram.h"
#include "bench/json_writer.h"

namespace roomsync::bench {

struct PullOptions {
  std::string base_url = "http://127.0.0.1:8080";
  // "roomsync", or "rxdb": base_url is an rxdb-server replication endpoint
  // (bench/rxdb_protocol.h); room and collection are then unused.
  std::string target = "roomsync";
  std::string room = "bench-pull";
  std::string collection = "messages";
  int64_t documents = 100000;  // seeded before the catch-up; 0 = room is seeded
  int batch_size = 1000;
  int seed_clients = 4;
  int seed_docs_per_push = 500;
  int passes = 1;
};

struct PullResult {
  PullOptions options;
  int64_t seeded = 0;
  double seed_s = 0;
  int64_t pulled = 0;  // per pass (last pass)
  int64_t requests = 0;
  double best_pass_s = 0;
  Histogram request_latency;
  std::string error;

  void Write(JsonWriter& json) const;
  std::string Summary() const;
};

PullResult RunPull(const PullOptions& options);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_PULL_SCENARIO_H_

// push and rooms: N clients each on one keep-alive connection, pushing
// chat messages (new ids, so every push is an insert) to rooms in
// rotation, closed loop (next push when the last is answered) or open
// loop at a target rate. Open-loop latency runs from the scheduled send
// time, not the actual one, so a stalled server cannot hide its queueing
// (no coordinated omission).
#ifndef ROOMSYNC_BENCH_PUSH_SCENARIO_H_
#define ROOMSYNC_BENCH_PUSH_SCENARIO_H_

#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/json_writer.h"
#include "bench/workload.h"

namespace roomsync::bench {

struct PushOptions {
  std::string base_url = "http://127.0.0.1:8080";
  // "roomsync", or "rxdb": base_url is an rxdb-server replication endpoint
  // (bench/rxdb_protocol.h), which has no rooms (rooms must be 1).
  std::string target = "roomsync";
  int clients = 16;
  int rooms = 1;
  int docs_per_push = 1;
  double rate = 0;  // pushes/s over all clients; 0 = closed loop
  double duration_s = 10;
  double warmup_s = 2;
  int threads = 1;
  std::string room_prefix = "bench";
  std::string collection = "messages";
  std::vector<int> server_pids;  // for CPU per push; may be empty
};

struct PushResult {
  PushOptions options;
  int64_t pushes = 0;  // answered 200 inside the window
  int64_t documents = 0;
  int64_t conflicts = 0;
  ErrorKinds errors;
  Histogram latency;
  int64_t server_cpu_us = 0;

  double pushes_per_s() const { return pushes / options.duration_s; }
  double documents_per_s() const { return documents / options.duration_s; }
  void Write(JsonWriter& json) const;  // members of an open object
  std::string Summary() const;
};

PushResult RunPush(const PushOptions& options);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_PUSH_SCENARIO_H_

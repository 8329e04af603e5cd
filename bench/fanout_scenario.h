// fanout: S SSE subscribers spread over R rooms, then publishers pushing
// one document at a fixed total rate; every subscriber measures the
// push-to-delivery latency of every document from the "sent_us" the
// publisher embedded. Targets roomsync (push endpoint, JSON array body)
// or any pub/sub SSE server such as nginx+nchan (raw body), through URL
// templates where "{room}" is replaced, so both are measured by the same
// client. Also reports the connect rate and the server's resident memory
// per idle connection (VmRSS of --server_pid before and after connecting).
#ifndef ROOMSYNC_BENCH_FANOUT_SCENARIO_H_
#define ROOMSYNC_BENCH_FANOUT_SCENARIO_H_

#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/json_writer.h"
#include "bench/workload.h"

namespace roomsync::bench {

struct FanoutOptions {
  std::string target = "roomsync";  // a label for the report
  std::string subscribe_url;        // template with {room}
  std::string publish_url;          // template with {room}
  bool publish_array = true;        // roomsync push body "[doc]"; else the doc
  int subscribers = 1000;
  int rooms = 1;
  double rate = 20;  // published documents/s over all rooms
  int publishers = 2;
  double duration_s = 10;
  double warmup_s = 1;
  int threads = 1;
  int connect_concurrency = 256;  // connects in flight at once
  std::vector<int> server_pids;
};

struct FanoutResult {
  FanoutOptions options;
  int64_t opened = 0;
  double connect_s = 0;
  int64_t rss_before_kib = 0;
  int64_t rss_idle_kib = 0;
  int64_t published = 0;  // acknowledged, scheduled inside the window
  ErrorKinds publish_errors;
  Histogram publish_latency;
  int64_t expected_deliveries = 0;
  Histogram delivery_latency;  // its count = deliveries inside the window
  int64_t resyncs = 0;
  int64_t connect_errors = 0;
  int64_t disconnects = 0;
  int64_t server_cpu_us = 0;

  double deliveries_per_s() const { return delivery_latency.count() / options.duration_s; }
  double bytes_per_connection() const;
  void Write(JsonWriter& json) const;
  std::string Summary() const;
};

FanoutResult RunFanout(const FanoutOptions& options);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_FANOUT_SCENARIO_H_

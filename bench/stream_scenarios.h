// The SSE stream scenarios of docs/benchmarks.md that check correctness
// per client, not only throughput (the DESIGN.md bars on slow consumers,
// reconnect storms and connects during fan-out):
//
//   slow-consumers         S subscribers of one room; phase A all read
//                          normally, phase B 1% read at ~1 KB/s: the
//                          others' p99 change, and every slow one either
//                          contiguous or a contiguous prefix then RESYNC.
//                          Phase C then raises the publish rate on the slow
//                          ones alone until they reach the server's queue
//                          bound, so that RESYNC is actually exercised.
//   reconnect-storm        N clients receive some changes, disconnect, miss
//                          K more, and reconnect at once with Last-Event-ID:
//                          time until all are at the head, nothing lost or
//                          duplicated, and cache vs store reads from the
//                          server's Prometheus metrics.
//   connect-during-fanout  S subscribers at 20 pushes/s; a baseline window,
//                          then a window in which extra clients open SSE
//                          connections as fast as they can and close each
//                          after its first event: connects/s and the
//                          fan-out p99 of both windows.
//
// Flags specific to these scenarios are defined in stream_scenarios.cc;
// the common ones (--url, --duration_s, --subscribers, …) come from main.cc.
#ifndef ROOMSYNC_BENCH_STREAM_SCENARIOS_H_
#define ROOMSYNC_BENCH_STREAM_SCENARIOS_H_

#include <string>

#include "bench/json_writer.h"

namespace roomsync::bench {

bool IsStreamScenario(const std::string& command);
// Runs one scenario and writes one series object into `json` (inside the
// report's "series" array); the human summary goes to stderr.
void RunStreamScenario(const std::string& command, JsonWriter& json);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_STREAM_SCENARIOS_H_

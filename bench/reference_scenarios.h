// Scenarios that bypass the HTTP gateway, for references and for
// measuring the layers below it:
//  - pg-scan: the bare keyset scan of a room's rows in PostgreSQL with the
//    store's own query shape (the reference for the pull bar);
//  - grpc-push: single-document pushes straight to the RoomSync gRPC API
//    of roomsync-room (the room service without the gateway).
#ifndef ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_
#define ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_

#include <string>

#include "bench/histogram.h"
#include "bench/json_writer.h"
#include "bench/push_scenario.h"

namespace roomsync::bench {

struct PgScanOptions {
  std::string pg_url;
  std::string room = "bench-pull";
  std::string collection = "messages";
  int batch_size = 1000;
  int passes = 1;
};

// Writes the scan's numbers into `json` (an open object); returns the
// human summary. Throws on a database error.
std::string RunPgScan(const PgScanOptions& options, JsonWriter& json);

// Closed loop with options.clients threads over one channel (gRPC
// multiplexes calls on it); options.base_url is host:port of the gRPC
// server; options.rate is ignored.
PushResult RunGrpcPush(const PushOptions& options);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_

// Scenarios that bypass the HTTP gateway, for references and for
// measuring the layers below it:
//  - pg-scan: the bare keyset scan of a room's rows in PostgreSQL with the
//    store's own query shape (the reference for the pull bar);
//  - grpc-push: single-document pushes straight to the RoomSync gRPC API
//    of roomsync-room (the room service without the gateway);
//  - grpc-watch: one Watch call subscribing N rooms on roomsync-room (what
//    re-subscribing a gateway's rooms costs the node, without the sockets
//    a gateway would need for N SSE sessions).
#ifndef ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_
#define ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_

#include <string>
#include <vector>

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

struct WatchNodeOptions {
  std::string address;  // host:port of roomsync-room's gRPC server
  int rooms = 1000;
  std::string room_prefix;
  int seed_clients = 32;
  // Run between the two rounds (kill and restart the node); its last line
  // of output is the new node's pid. Empty: one round only.
  std::string restart_cmd;
  std::vector<int> server_pids;
  double timeout_s = 120;
  // Announce and use batched Watch messages (false: one request and one
  // event per message, as before batching existed).
  bool batch = true;
};

// Writes the rounds' numbers into `json` (an open object); returns the
// human summary. Throws when the restarted node never answers.
std::string RunGrpcWatch(const WatchNodeOptions& options, JsonWriter& json);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_REFERENCE_SCENARIOS_H_

// roomsync-bench: the load generator of docs/benchmarks.md. One program,
// one subcommand per scenario; flags are shared (absl flags; list values
// are comma-separated and sweep the scenario). Prints a human summary on
// stderr and one JSON object on stdout or into --out.
//
//   roomsync-bench push --url http://127.0.0.1:8080 --clients 1,16,64
//   roomsync-bench rooms --room_counts 10,1000,100000 --rate 2000
//   roomsync-bench pull --documents 1000000 --batch_size 1000
//   roomsync-bench push --target rxdb --url http://127.0.0.1:8095/messages/0 --clients 16
//   roomsync-bench pull --target rxdb --url http://127.0.0.1:8095/messages/0 --documents 100000
//   roomsync-bench fanout --subscribers 5000 --rate 20 --server_pid 1234
//   roomsync-bench fanout --target nchan --publish_body raw
//       --subscribe_url 'http://127.0.0.1:8090/sub?id={room}'
//       --publish_url 'http://127.0.0.1:8090/pub?id={room}'
//   roomsync-bench pg-scan --pg_url postgresql://… --room bench-pull
//   roomsync-bench grpc-push --url 127.0.0.1:7070 --clients 16
//   roomsync-bench grpc-watch --url 127.0.0.1:7070 --room_counts 100000 --restart_cmd '…'
//   roomsync-bench slow-consumers --subscribers 2000 --rate 50
//   roomsync-bench reconnect-storm --subscribers 10000 --metrics_url http://127.0.0.1:9100/metrics
//   roomsync-bench connect-during-fanout --subscribers 5000 --rate 20
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/fanout_scenario.h"
#include "bench/pull_scenario.h"
#include "bench/push_scenario.h"
#include "bench/reference_scenarios.h"
#include "bench/stream_scenarios.h"

ABSL_FLAG(std::string, url, "http://127.0.0.1:8080", "roomsync base URL (grpc-push: host:port)");
ABSL_FLAG(std::string, out, "", "write the JSON report here instead of stdout");
ABSL_FLAG(std::string, label, "", "free text copied into the report");
ABSL_FLAG(std::vector<std::string>, clients, {"16"}, "push: concurrent clients (list sweeps)");
ABSL_FLAG(int, rooms, 1, "push/fanout: rooms the load is spread over");
ABSL_FLAG(std::vector<std::string>, room_counts, std::vector<std::string>({"10", "100", "1000", "10000", "100000"}),
          "rooms: room counts to sweep");
ABSL_FLAG(int, docs_per_push, 1, "push: documents per push");
ABSL_FLAG(std::vector<std::string>, rate, {"0"},
          "push: pushes/s over all clients, 0 = closed loop (list sweeps); fanout: docs/s");
ABSL_FLAG(double, duration_s, 10, "measured seconds per run");
ABSL_FLAG(double, warmup_s, 2, "unmeasured seconds before each run");
ABSL_FLAG(int, threads, 1, "generator I/O threads");
ABSL_FLAG(std::string, room_prefix, "", "room name prefix (default: bench-<pid>)");
ABSL_FLAG(std::string, collection, "messages", "collection pushed and pulled");
ABSL_FLAG(std::string, server_pid, "", "comma-separated server pids for VmRSS and CPU time");
ABSL_FLAG(std::string, room, "bench-pull", "pull/pg-scan: the room");
ABSL_FLAG(int64_t, documents, 100000, "pull: documents to seed first (0 = already seeded)");
ABSL_FLAG(int, batch_size, 1000, "pull/pg-scan: batchSize");
ABSL_FLAG(int, passes, 2, "pull/pg-scan: catch-up passes (the best is reported)");
ABSL_FLAG(int, seed_clients, 4, "pull, grpc-watch: concurrent seeding pushes");
ABSL_FLAG(int, seed_docs_per_push, 500, "pull: documents per seeding push");
ABSL_FLAG(std::string, pg_url, "", "pg-scan: PostgreSQL URL of the store");
ABSL_FLAG(std::vector<std::string>, subscribers, {"1000"}, "fanout: SSE subscribers (list sweeps)");
ABSL_FLAG(int, publishers, 2, "fanout: publisher connections");
ABSL_FLAG(int, connect_concurrency, 256, "fanout: connects in flight at once");
ABSL_FLAG(std::string, target, "roomsync",
          "fanout: label of the server under test; push/pull: roomsync, or rxdb (--url is an "
          "rxdb-server replication endpoint, e.g. http://127.0.0.1:8095/messages/0)");
ABSL_FLAG(std::string, subscribe_url, "",
          "fanout: SSE URL template with {room} (default: roomsync's stream under --url)");
ABSL_FLAG(std::string, publish_url, "",
          "fanout: publish URL template with {room} (default: roomsync's push under --url)");
ABSL_FLAG(std::string, restart_cmd, "",
          "grpc-watch: shell command that kills and restarts the node between the rounds and "
          "prints the new pid");
ABSL_FLAG(bool, watch_batch, true,
          "grpc-watch: batched Watch requests and events (false: one per message)");
ABSL_FLAG(std::string, publish_body, "array", "fanout: array (roomsync push) or raw (pub/sub)");

namespace roomsync::bench {
namespace {

std::vector<double> Numbers(const std::vector<std::string>& list) {
  std::vector<double> out;
  for (const std::string& item : list) out.push_back(std::stod(item));
  return out;
}

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

PushOptions PushFlags() {
  PushOptions o;
  o.base_url = absl::GetFlag(FLAGS_url);
  o.target = absl::GetFlag(FLAGS_target);
  o.rooms = absl::GetFlag(FLAGS_rooms);
  o.docs_per_push = absl::GetFlag(FLAGS_docs_per_push);
  o.duration_s = absl::GetFlag(FLAGS_duration_s);
  o.warmup_s = absl::GetFlag(FLAGS_warmup_s);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.room_prefix = absl::GetFlag(FLAGS_room_prefix);
  // A fresh prefix per run: rooms from an earlier run would not be new.
  if (o.room_prefix.empty()) o.room_prefix = "bench-" + std::to_string(getpid());
  o.collection = absl::GetFlag(FLAGS_collection);
  o.server_pids = ParsePids(absl::GetFlag(FLAGS_server_pid));
  return o;
}

// The push-shaped sweeps: push, rooms and grpc-push.
void RunPushSweep(const std::string& command, JsonWriter& json) {
  PushOptions base = PushFlags();
  if (command == "grpc-push" && base.target != "roomsync") {
    throw std::runtime_error("grpc-push speaks roomsync-room's gRPC API only");
  }
  std::vector<double> room_counts = {static_cast<double>(base.rooms)};
  if (command == "rooms") room_counts = Numbers(absl::GetFlag(FLAGS_room_counts));
  int run = 0;
  for (double rooms : room_counts) {
    for (double clients : Numbers(absl::GetFlag(FLAGS_clients))) {
      for (double rate : Numbers(absl::GetFlag(FLAGS_rate))) {
        PushOptions o = base;
        o.rooms = static_cast<int>(rooms);
        o.clients = static_cast<int>(clients);
        o.rate = rate;
        o.room_prefix = base.room_prefix + "-" + std::to_string(run++);
        PushResult r = command == "grpc-push" ? RunGrpcPush(o) : RunPush(o);
        std::cerr << (command == "grpc-push" ? "grpc-" : "") << r.Summary() << std::endl;
        json.BeginObject();
        r.Write(json);
        json.EndObject();
      }
    }
  }
}

int Main(const std::string& command) {
  JsonWriter json;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  json.BeginObject()
      .String("scenario", command)
      .String("label", absl::GetFlag(FLAGS_label))
      .BeginObject("machine")
      .Int("nproc", std::thread::hardware_concurrency())
      .String("cpu", CpuModel())
      .String("host", host)
      .EndObject()
      .BeginArray("series");
  if (command == "push" || command == "rooms" || command == "grpc-push") {
    RunPushSweep(command, json);
  } else if (command == "pull") {
    PullOptions o;
    o.base_url = absl::GetFlag(FLAGS_url);
    o.target = absl::GetFlag(FLAGS_target);
    o.room = absl::GetFlag(FLAGS_room);
    o.collection = absl::GetFlag(FLAGS_collection);
    o.documents = absl::GetFlag(FLAGS_documents);
    o.batch_size = absl::GetFlag(FLAGS_batch_size);
    o.passes = absl::GetFlag(FLAGS_passes);
    o.seed_clients = absl::GetFlag(FLAGS_seed_clients);
    o.seed_docs_per_push = absl::GetFlag(FLAGS_seed_docs_per_push);
    PullResult r = RunPull(o);
    std::cerr << r.Summary() << std::endl;
    json.BeginObject();
    r.Write(json);
    json.EndObject();
  } else if (command == "pg-scan") {
    PgScanOptions o;
    o.pg_url = absl::GetFlag(FLAGS_pg_url);
    o.room = absl::GetFlag(FLAGS_room);
    o.collection = absl::GetFlag(FLAGS_collection);
    o.batch_size = absl::GetFlag(FLAGS_batch_size);
    o.passes = absl::GetFlag(FLAGS_passes);
    json.BeginObject();
    std::cerr << RunPgScan(o, json) << std::endl;
    json.EndObject();
  } else if (command == "fanout") {
    const std::string url = absl::GetFlag(FLAGS_url);
    for (double subscribers : Numbers(absl::GetFlag(FLAGS_subscribers))) {
      for (double rate : Numbers(absl::GetFlag(FLAGS_rate))) {
        FanoutOptions o;
        o.target = absl::GetFlag(FLAGS_target);
        o.subscribe_url = absl::GetFlag(FLAGS_subscribe_url);
        if (o.subscribe_url.empty()) {
          o.subscribe_url = url + "/v1/rooms/{room}/replicate/pull/stream?collection=" +
                            absl::GetFlag(FLAGS_collection);
        }
        o.publish_url = absl::GetFlag(FLAGS_publish_url);
        if (o.publish_url.empty()) {
          o.publish_url = url + "/v1/rooms/{room}/replicate/push?collection=" +
                          absl::GetFlag(FLAGS_collection);
        }
        o.publish_array = absl::GetFlag(FLAGS_publish_body) == "array";
        o.subscribers = static_cast<int>(subscribers);
        o.rooms = absl::GetFlag(FLAGS_rooms);
        o.rate = rate > 0 ? rate : 20;
        o.publishers = absl::GetFlag(FLAGS_publishers);
        o.duration_s = absl::GetFlag(FLAGS_duration_s);
        o.warmup_s = absl::GetFlag(FLAGS_warmup_s);
        o.threads = absl::GetFlag(FLAGS_threads);
        o.connect_concurrency = absl::GetFlag(FLAGS_connect_concurrency);
        o.server_pids = ParsePids(absl::GetFlag(FLAGS_server_pid));
        FanoutResult r = RunFanout(o);
        std::cerr << r.Summary() << std::endl;
        json.BeginObject();
        r.Write(json);
        json.EndObject();
      }
    }
  } else if (command == "grpc-watch") {
    for (double rooms : Numbers(absl::GetFlag(FLAGS_room_counts))) {
      WatchNodeOptions o;
      o.address = absl::GetFlag(FLAGS_url);
      o.rooms = static_cast<int>(rooms);
      o.room_prefix = absl::GetFlag(FLAGS_room_prefix);
      if (o.room_prefix.empty()) o.room_prefix = "watch-" + std::to_string(getpid());
      o.room_prefix += "-" + std::to_string(o.rooms);
      o.seed_clients = absl::GetFlag(FLAGS_seed_clients);
      o.restart_cmd = absl::GetFlag(FLAGS_restart_cmd);
      o.batch = absl::GetFlag(FLAGS_watch_batch);
      o.server_pids = ParsePids(absl::GetFlag(FLAGS_server_pid));
      json.BeginObject();
      std::cerr << RunGrpcWatch(o, json) << std::endl;
      json.EndObject();
    }
  } else if (IsStreamScenario(command)) {
    RunStreamScenario(command, json);
  } else {
    std::cerr << "unknown command " << command
              << "; one of push, rooms, pull, fanout, pg-scan, grpc-push, grpc-watch, slow-consumers, "
                 "reconnect-storm, connect-during-fanout\n";
    return 2;
  }
  json.EndArray().EndObject();
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::cout << json.str() << std::endl;
  } else {
    std::ofstream(out) << json.str() << '\n';
  }
  return 0;
}

}  // namespace
}  // namespace roomsync::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "roomsync-bench push|rooms|pull|fanout|pg-scan|grpc-push|grpc-watch|slow-consumers|reconnect-storm|"
      "connect-during-fanout [flags]; see docs/benchmarks.md");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() != 2) {
    std::cerr << "usage: roomsync-bench push|rooms|pull|fanout|pg-scan|grpc-push|grpc-watch|slow-consumers|"
                 "reconnect-storm|connect-during-fanout [flags]\n";
    return 2;
  }
  // 10,000+ sockets need more than the usual 1024 descriptors.
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  try {
    return roomsync::bench::Main(positional[1]);
  } catch (const std::exception& e) {
    std::cerr << "roomsync-bench: " << e.what() << "\n";
    return 1;
  }
}

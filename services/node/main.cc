// roomsync: the whole service in one process (room service + HTTP gateway
// over an embedded SQLite file by default). The room service's flags
// (--store, --metrics, limits, policies) come from services/room/room_flags.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "base/env_flags.h"
#include "base/log.h"
#include "base/termination.h"
#include "gateway/gateway_flags.h"
#include "services/node/node.h"
#include "services/room/room_flags.h"

ABSL_FLAG(std::string, http, "127.0.0.1:8080", "HTTP listen address host:port");
ABSL_FLAG(std::string, allowed_origins, "",
          "comma-separated CORS origins; empty allows any origin (development)");
ABSL_FLAG(int, http_threads, 2, "gateway I/O threads");
ABSL_FLAG(int, drain_seconds, 10, "grace for in-flight requests on SIGTERM");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");
ABSL_FLAG(std::string, room_calls, "direct",
          "how the gateway reaches the room service for push, pull, history and snapshots: "
          "direct (a C++ call) or grpc (the in-process gRPC channel, as a split topology "
          "does over the network; for comparison)");

namespace {

int ExitWith(const absl::Status& status, int code) {
  std::fprintf(stderr, "roomsync: %s\n", std::string(status.message()).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  roomsync::ParseFlagsWithEnv(
      argc, argv,
      "roomsync --http 127.0.0.1:8080 --store sqlite:./data/roomsync.db --auth off");
  roomsync::LogLevel level;
  if (!roomsync::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return ExitWith(absl::InvalidArgumentError("unknown --log_level"), 2);
  }
  roomsync::SetMinLogLevel(level);

  // Both read --auth and --jwt_* (gateway/auth_flags): the gateway and the
  // room service's optional --grpc port check the same tokens.
  absl::StatusOr<roomsync::RoomServerConfig> room = roomsync::RoomServerConfigFromFlags();
  if (!room.ok()) return ExitWith(room.status(), 2);
  absl::StatusOr<roomsync::GatewayConfig> gateway = roomsync::GatewayConfigFromFlags();
  if (!gateway.ok()) return ExitWith(gateway.status(), 2);
  roomsync::NodeConfig config;
  config.room = *std::move(room);
  config.gateway = *std::move(gateway);
  // One process needs no gRPC port (the gateway uses an in-process
  // channel); --grpc opens one for internal clients.
  config.gateway.http_address = absl::GetFlag(FLAGS_http);
  config.gateway.threads = absl::GetFlag(FLAGS_http_threads);
  const std::string room_calls = absl::GetFlag(FLAGS_room_calls);
  if (room_calls != "direct" && room_calls != "grpc") {
    return ExitWith(absl::InvalidArgumentError("--room_calls is direct or grpc"), 2);
  }
  config.direct_room_calls = room_calls == "direct";
  for (absl::string_view origin :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_origins), ',', absl::SkipEmpty())) {
    config.gateway.allowed_origins.emplace_back(origin);
  }

  roomsync::BlockTerminationSignals();

  absl::StatusOr<std::unique_ptr<roomsync::Node>> node = roomsync::Node::Start(config);
  if (!node.ok()) return ExitWith(node.status(), 1);
  std::string host = config.gateway.http_address.substr(
      0, config.gateway.http_address.rfind(':'));
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  std::printf("roomsync is serving %s://%s:%d/v1/rooms/{room}/ (store %s)\n",
              config.gateway.tls.enabled() ? "https" : "http", host.c_str(),
              (*node)->http_port(), config.room.store_url.c_str());
  std::fflush(stdout);
  int signal = roomsync::WaitForTerminationSignal();
  roomsync::Log(roomsync::LogLevel::kInfo, "node_draining", {{"signal", signal}});
  (*node)->Drain(absl::Seconds(absl::GetFlag(FLAGS_drain_seconds)));
  return 0;
}

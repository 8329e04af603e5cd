// roomsync-room: one room service node. Serves the RoomSync gRPC API (plus
// health and reflection) over PostgreSQL or SQLite, and Prometheus metrics.
#include <cstdio>

#include "absl/flags/flag.h"
#include "base/env_flags.h"
#include "base/log.h"
#include "base/termination.h"
#include "services/room/room_flags.h"
#include "services/room/room_server.h"

ABSL_FLAG(std::string, log_level, "info", "Least severe log level: debug, info, warning, error");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM, how long in-flight calls get to finish");

namespace {

int ExitWith(const absl::Status& status, int code) {
  roomsync::Log(roomsync::LogLevel::kError, "room_service_failed",
                {{"code", absl::StatusCodeToString(status.code())},
                 {"message", std::string(status.message())}});
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  roomsync::BlockTerminationSignals();

  roomsync::ParseFlagsWithEnv(argc, argv,
                              "roomsync-room: a room service node (RoomSync gRPC API).");
  roomsync::LogLevel level;
  if (!roomsync::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "--log_level must be debug, info, warning or error\n");
    return 2;
  }
  roomsync::SetMinLogLevel(level);
  absl::StatusOr<roomsync::RoomServerConfig> config = roomsync::RoomServerConfigFromFlags();
  if (!config.ok()) return ExitWith(config.status(), 2);
  if (config->grpc_address.empty()) config->grpc_address = "127.0.0.1:7070";
  absl::StatusOr<std::unique_ptr<roomsync::RoomServer>> server =
      roomsync::RoomServer::Start(*config);
  if (!server.ok()) return ExitWith(server.status(), 1);
  roomsync::Log(roomsync::LogLevel::kInfo, "room_service_started",
                {{"grpc_port", (*server)->grpc_port()},
                 {"metrics_port", (*server)->metrics_port()}});
  int signal = roomsync::WaitForTerminationSignal();
  roomsync::Log(roomsync::LogLevel::kInfo, "room_service_draining", {{"signal", signal}});
  (*server)->Drain(absl::GetFlag(FLAGS_drain_timeout));
  return 0;
}

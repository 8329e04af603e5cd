// roomsync-gateway: the public HTTP/SSE API in front of a room service.

#include <cstdio>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "base/env_flags.h"
#include "base/log.h"
#include "base/termination.h"
#include "base/string_view.h"
#include "gateway/gateway.h"

ABSL_FLAG(std::string, http, "127.0.0.1:8080", "HTTP listen address host:port");
ABSL_FLAG(std::string, room_service, "127.0.0.1:7070",
          "the room service's gRPC address host:port (plaintext for now)");
ABSL_FLAG(std::string, allowed_origins, "",
          "comma-separated CORS origins; empty allows any origin (development)");
ABSL_FLAG(int, threads, 2, "I/O threads");
ABSL_FLAG(int, keepalive_seconds, 15, "SSE keep-alive comment interval");
ABSL_FLAG(int, drain_seconds, 10, "grace for in-flight requests on SIGTERM");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");

int main(int argc, char** argv) {
  roomsync::ParseFlagsWithEnv(argc, argv,
                              "roomsync-gateway --http 127.0.0.1:8080 --room_service HOST:PORT");
  roomsync::LogLevel level;
  if (!roomsync::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "unknown --log_level\n");
    return 2;
  }
  roomsync::SetMinLogLevel(level);
  roomsync::BlockTerminationSignals();

  roomsync::GatewayConfig config;
  config.http_address = absl::GetFlag(FLAGS_http);
  for (absl::string_view origin :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_origins), ',', absl::SkipEmpty())) {
    config.allowed_origins.emplace_back(origin);
  }
  config.threads = absl::GetFlag(FLAGS_threads);
  config.keepalive_interval = absl::Seconds(absl::GetFlag(FLAGS_keepalive_seconds));
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_room_service),
                                     grpc::InsecureChannelCredentials());
  auto gateway = roomsync::Gateway::Start(config, channel);
  if (!gateway.ok()) {
    std::fprintf(stderr, "roomsync-gateway: %s\n", std::string(gateway.status().message()).c_str());
    return 1;
  }
  std::printf("roomsync-gateway listening on http://%s (port %d)\n", config.http_address.c_str(),
              (*gateway)->http_port());
  std::fflush(stdout);
  int signal = roomsync::WaitForTerminationSignal();
  roomsync::Log(roomsync::LogLevel::kInfo, "gateway_draining", {{"signal", signal}});
  (*gateway)->Drain(absl::Seconds(absl::GetFlag(FLAGS_drain_seconds)));
  return 0;
}

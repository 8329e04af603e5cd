// roomsync-gateway: the public HTTP/SSE API in front of a room service.

#include <cstdio>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "base/env_flags.h"
#include "base/log.h"
#include "base/termination.h"
#include "base/string_view.h"
#include "cluster/shard_map.h"
#include "gateway/gateway.h"
#include "gateway/gateway_flags.h"
#include "gateway/room_service_channel.h"

ABSL_FLAG(std::string, http, "127.0.0.1:8080", "HTTP listen address host:port");
ABSL_FLAG(std::string, metrics, "",
          "listen address host:port for /metrics and /healthz on a port of their own (then the "
          "public --http port answers /metrics with 404); empty = /metrics on --http");
ABSL_FLAG(std::string, room_service, "127.0.0.1:7070",
          "the room service's gRPC address host:port, or the room nodes' addresses "
          "host:port,host:port,... Nodes with --shard_leases: each room goes to its shard's "
          "owner in their lease table, and owners not listed are found there (one listed node "
          "is enough). Without leases: shard s goes to node s % N (cluster/shard_map.h), so "
          "every gateway needs the same list in the same order");
ABSL_FLAG(std::string, room_service_tls_ca, "",
          "PEM CA that signs the room service's certificate (TLS to the room service)");
ABSL_FLAG(std::string, room_service_tls_cert, "",
          "PEM client certificate for mTLS to the room service");
ABSL_FLAG(std::string, room_service_tls_key, "", "PEM key of --room_service_tls_cert");
ABSL_FLAG(std::string, room_service_tls_server_name, "",
          "name to check in the room service's certificate (default: the host of each "
          "--room_service address; when set, it is checked on every room node)");
ABSL_FLAG(bool, grpc_plaintext, false,
          "talk to the room service without TLS (local use only: tokens cross in clear text)");
ABSL_FLAG(std::string, upstream_token_file, "",
          "a JWT (rooms [\"*\"], scope read) the gateway sends on its shared per-room Subscribe "
          "when the room service does not trust its client certificate");
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

  absl::StatusOr<roomsync::GatewayConfig> from_flags = roomsync::GatewayConfigFromFlags();
  if (!from_flags.ok()) {
    std::fprintf(stderr, "roomsync-gateway: %s\n", std::string(from_flags.status().message()).c_str());
    return 2;
  }
  roomsync::GatewayConfig config = *std::move(from_flags);
  config.upstream_token_file = absl::GetFlag(FLAGS_upstream_token_file);
  config.http_address = absl::GetFlag(FLAGS_http);
  config.metrics_address = absl::GetFlag(FLAGS_metrics);
  for (absl::string_view origin :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_origins), ',', absl::SkipEmpty())) {
    config.allowed_origins.emplace_back(origin);
  }
  config.threads = absl::GetFlag(FLAGS_threads);
  config.keepalive_interval = absl::Seconds(absl::GetFlag(FLAGS_keepalive_seconds));
  absl::StatusOr<std::vector<std::string>> addresses =
      roomsync::ParseNodeList(absl::GetFlag(FLAGS_room_service));
  if (!addresses.ok()) {
    std::fprintf(stderr, "roomsync-gateway: --room_service: %s\n",
                 std::string(addresses.status().message()).c_str());
    return 2;
  }
  roomsync::RoomServiceChannelConfig upstream;
  upstream.ca_file = absl::GetFlag(FLAGS_room_service_tls_ca);
  upstream.cert_file = absl::GetFlag(FLAGS_room_service_tls_cert);
  upstream.key_file = absl::GetFlag(FLAGS_room_service_tls_key);
  upstream.server_name = absl::GetFlag(FLAGS_room_service_tls_server_name);
  upstream.plaintext = absl::GetFlag(FLAGS_grpc_plaintext);
  std::vector<roomsync::RoomNodeChannel> room_nodes;
  for (const std::string& address : *addresses) {
    upstream.address = address;
    auto channel = roomsync::OpenRoomServiceChannel(upstream);
    if (!channel.ok()) {
      std::fprintf(stderr, "roomsync-gateway: %s\n", std::string(channel.status().message()).c_str());
      return 2;
    }
    room_nodes.push_back({address, *std::move(channel)});
  }
  if (upstream.plaintext) {
    roomsync::Log(roomsync::LogLevel::kWarning, "grpc_plaintext",
                  {{"detail", "--grpc_plaintext: tokens cross to the room service in clear text"}});
  }
  // Owners the lease table names at addresses not listed here are called
  // with the same credentials (nodes added without reconfiguring gateways).
  roomsync::RoomNodeOpener discover = [upstream](const std::string& address) mutable {
    upstream.address = address;
    return roomsync::OpenRoomServiceChannel(upstream);
  };
  auto gateway = roomsync::Gateway::Start(config, std::move(room_nodes), std::move(discover));
  if (!gateway.ok()) {
    std::fprintf(stderr, "roomsync-gateway: %s\n", std::string(gateway.status().message()).c_str());
    return 1;
  }
  std::printf("roomsync-gateway listening on %s://%s (port %d)\n",
              config.tls.enabled() ? "https" : "http", config.http_address.c_str(),
              (*gateway)->http_port());
  std::fflush(stdout);
  int signal = roomsync::WaitForTerminationSignal();
  roomsync::Log(roomsync::LogLevel::kInfo, "gateway_draining", {{"signal", signal}});
  (*gateway)->Drain(absl::Seconds(absl::GetFlag(FLAGS_drain_seconds)));
  return 0;
}

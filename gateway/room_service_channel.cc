#include "gateway/room_service_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "base/file.h"

namespace roomsync {

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenRoomServiceChannel(
    const RoomServiceChannelConfig& config) {
  grpc::ChannelArguments args;
  // Pushes are up to 8 MiB; answers (pull pages) may be larger than the
  // 4 MiB default.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A room node that restarts (a rolling update, a crash) is back within
  // seconds; gRPC's default reconnect backoff grows to 120 s, which would
  // keep its rooms unavailable through this gateway long after. Retry at
  // most every second instead. (The minimum backoff is also the connect
  // timeout, so it keeps its 20 s default.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A node that vanishes without closing its connections (its machine
  // lost, a network partition) would leave the room subscriptions this
  // gateway holds waiting forever: pings find it within 15 s, so the
  // streams end and their subscribers resume elsewhere. The room server
  // accepts pings this often (room_server.cc).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (config.plaintext) {
    return grpc::CreateCustomChannel(config.address, grpc::InsecureChannelCredentials(), args);
  }
  if (config.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "the room service channel needs --room_service_tls_ca (and --room_service_tls_cert/"
        "--room_service_tls_key for mTLS), or --grpc_plaintext for local use");
  }
  if (config.cert_file.empty() != config.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--room_service_tls_cert and --room_service_tls_key go together");
  }
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> ca = ReadNonEmptyFile(config.ca_file, "--room_service_tls_ca");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *std::move(ca);
  if (!config.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadNonEmptyFile(config.cert_file, "--room_service_tls_cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadNonEmptyFile(config.key_file, "--room_service_tls_key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *std::move(cert);
    options.pem_private_key = *std::move(key);
  }
  if (!config.server_name.empty()) args.SetSslTargetNameOverride(config.server_name);
  return grpc::CreateCustomChannel(config.address, grpc::SslCredentials(options), args);
}

}  // namespace roomsync

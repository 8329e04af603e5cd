// The gateway's channel to a room service in another process: TLS with a
// client certificate (mTLS) from PEM files, or plaintext only when asked
// for explicitly (local use: tokens would cross the network in clear text).
#ifndef ROOMSYNC_GATEWAY_ROOM_SERVICE_CHANNEL_H_
#define ROOMSYNC_GATEWAY_ROOM_SERVICE_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace roomsync {

struct RoomServiceChannelConfig {
  std::string address;  // host:port
  // CA that signs the room service's certificate. Required unless plaintext.
  std::string ca_file;
  // Our client certificate and key (both or neither): the room service
  // requires them when it runs with --grpc_tls_ca.
  std::string cert_file;
  std::string key_file;
  // Overrides the name checked against the room service's certificate
  // (default: the host part of `address`).
  std::string server_name;
  bool plaintext = false;
};

// kInvalidArgument when neither TLS files nor plaintext are configured, or
// a file cannot be read. The channel connects lazily.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenRoomServiceChannel(
    const RoomServiceChannelConfig& config);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_ROOM_SERVICE_CHANNEL_H_

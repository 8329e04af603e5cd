// The single-node roomsync: a RoomServer and a Gateway in one process. The
// gateway calls the room service's unary calls directly (no gRPC, no
// serialisation, no hop through gRPC's threads: protocol/
// direct_room_calls.h) and opens its streams over the in-process channel.
// main() and the tests start the same Node.
#ifndef ROOMSYNC_SERVICES_NODE_NODE_H_
#define ROOMSYNC_SERVICES_NODE_NODE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"
#include "services/room/room_server.h"

namespace roomsync {

struct NodeConfig {
  // grpc_address empty = in-process only (the default for a single node).
  RoomServerConfig room;
  GatewayConfig gateway;
  // False: the unary calls too go over the in-process gRPC channel, as
  // before direct calls (roomsync --room_calls=grpc, for comparison).
  bool direct_room_calls = true;
};

class Node {
 public:
  // Creates the SQLite file's directory when missing, starts the room
  // service, then the gateway. Errors as RoomServer::Start / Gateway::Start.
  static absl::StatusOr<std::unique_ptr<Node>> Start(const NodeConfig& config);

  ~Node();

  int http_port() const { return gateway_->http_port(); }
  RoomServer& room_server() { return *room_server_; }

  // Drains the gateway (no new requests, streams end), then the room
  // service. Idempotent.
  void Drain(absl::Duration grace);

 private:
  Node() = default;
  std::unique_ptr<RoomServer> room_server_;
  std::unique_ptr<Gateway> gateway_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_NODE_NODE_H_

// A running room service: the RoomSync gRPC API (plus grpc.health.v1 and
// server reflection) over a Store, with its operators' port (/metrics,
// /healthz, /readyz).
// `roomsync-room` is main() around this class; `roomsync` (single node)
// starts one and talks to it through InProcessChannel(), the same code path
// as the cluster.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_SERVER_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/jwt_verifier.h"
#include "services/room/room_config.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace roomsync {

class DirectRoomCalls;

// TLS of the gRPC listener, from PEM files.
struct GrpcServerTls {
  std::string cert_file;  // empty: no TLS
  std::string key_file;
  // CA that signs the clients' certificates. Set: every client must present
  // a certificate it verifies (mTLS). Empty: server-side TLS only, and
  // callers authenticate by token alone.
  std::string ca_file;
  bool enabled() const { return !cert_file.empty(); }
};

// Shard leases (DESIGN.md, Sharding; services/room/shard_lease_keeper.h):
// the node serves and writes only the rooms of the shards it holds, and
// every commit is fenced by its lease epoch. Off: the node serves every
// room (a single node, or room nodes that a gateway partitions statically).
struct ShardLeasing {
  bool enabled = false;
  std::string node_id;            // empty: host name, pid and a random suffix
  std::string advertise_address;  // where gateways reach this node; empty: the gRPC address
  absl::Duration ttl = absl::Seconds(10);
  absl::Duration round_every = absl::Seconds(3);
};

struct RoomServerConfig {
  // Store URL (see storage/store.h OpenStore): sqlite:PATH or postgresql://...
  std::string store_url = "sqlite:./data/roomsync.db";
  // gRPC listen address ("127.0.0.1:0" picks a free port); empty = no
  // network listener (in-process channel only).
  std::string grpc_address = "127.0.0.1:7070";
  // The operators' port (ops/ops_http_server.h): /metrics, /healthz and
  // /readyz; empty = none.
  std::string metrics_address;
  // How the store's reachability is checked for /readyz and gRPC health.
  StoreHealthOptions health;
  RoomServiceConfig service;
  // Authentication of RoomSync calls (services/room/room_auth.h): nullopt
  // = every call is allowed. The binaries default to jwt (--auth).
  std::optional<JwtConfig> jwt;
  GrpcServerTls tls;
  // A network listener without TLS is refused unless this is set. True here
  // for in-process users and tests; the binaries set it only from an
  // explicit --grpc_plaintext.
  bool allow_plaintext = true;
  ShardLeasing leasing;
};

class RoomServer {
 public:
  // Opens the store (applying migrations), starts the gRPC server and the
  // metrics endpoint. kInvalidArgument for a bad config, kUnavailable when
  // the store or a port cannot be had.
  static absl::StatusOr<std::unique_ptr<RoomServer>> Start(const RoomServerConfig& config);

  virtual ~RoomServer() = default;

  // The bound gRPC port (useful with port 0); 0 without a listener.
  virtual int grpc_port() const = 0;
  // The bound metrics port; 0 without a metrics endpoint.
  virtual int metrics_port() const = 0;
  // A channel to this server that skips the network.
  virtual std::shared_ptr<grpc::Channel> InProcessChannel() = 0;
  // The same service's unary calls without gRPC (protocol/
  // direct_room_calls.h), for a gateway in this process. Lives as long as
  // the server.
  virtual DirectRoomCalls& DirectCalls() = 0;

  // Stops taking new calls, lets in-flight commits finish and be answered,
  // ends open Subscribe streams cleanly, then shuts the server down. Waits
  // at most `grace` for in-flight calls. Idempotent.
  virtual void Drain(absl::Duration grace) = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_SERVER_H_

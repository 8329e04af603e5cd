// What every part of a running gateway shares: config, the room nodes'
// stubs and the shard map that picks one per room, metrics, the per-room
// fan-outs and the keep-alive ticker. Owned by Gateway::Impl, which
// outlives every session and every gRPC call (it waits for outstanding
// calls before it goes).
#ifndef ROOMSYNC_GATEWAY_GATEWAY_CONTEXT_H_
#define ROOMSYNC_GATEWAY_GATEWAY_CONTEXT_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "cluster/shard_map.h"
#include "gateway/cors.h"
#include "gateway/gateway.h"
#include "gateway/gateway_metrics.h"
#include "gateway/rate_limiter.h"
#include "gateway/room_node_set.h"
#include "gateway/shard_owners.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {

class DirectRoomCalls;
class JwtVerifier;
class StaticFiles;
class TlsContextSource;
class RoomFanouts;
class WatchCalls;
class SseKeepAlive;

struct GatewayContext {
  // One room node: its channel (readiness probe) and stub (every call).
  using RoomNode = RoomNodeSet::Node;

  // `room_nodes` is not empty (Gateway::Start checks).
  GatewayContext(const GatewayConfig& config, std::vector<RoomNodeChannel> room_nodes,
                 RoomNodeOpener discover, boost::asio::io_context& io);
  ~GatewayContext();

  // The node that serves `room` (its shard's owner in shard_map), for
  // every upstream call about the room.
  // The shard's owner when the lease table names one, else its node in
  // the static map.
  int NodeIndexFor(std::string_view room) const {
    const int owner = owners.OwnerOf(ShardOf(room));
    return owner >= 0 ? owner : static_cast<int>(shard_map.NodeOf(room));
  }
  const RoomNode& NodeFor(std::string_view room) const { return room_nodes.at(NodeIndexFor(room)); }
  // After a FAILED_PRECONDITION from a room node: learns the owner it named
  // (trailing roomsync-owner). True when calls for `room` now go to
  // another node, so a refused call may be sent again there.
  bool LearnOwner(std::string_view room, const grpc::ClientContext& refused);
  // The same, from the owner's address ("" when the node named none).
  bool LearnOwner(std::string_view room, std::string_view owner);
  v1::RoomSync::Stub& StubFor(std::string_view room) const { return *NodeFor(room).stub; }

  // Adds the caller's token as call credentials ("authorization: Bearer")
  // to an upstream call, so that the room service checks the same grant.
  static void ForwardToken(grpc::ClientContext& client_context, const std::string& token);

  // The gateway's own token for upstream calls that no client makes (the
  // shared Subscribe), from config.upstream_token_file; "" when none is
  // configured. Read on each use, so that the file can be rotated.
  absl::StatusOr<std::string> ReadUpstreamToken() const;

  // Deadline for a unary call started now.
  std::chrono::system_clock::time_point UnaryDeadline() const;

  const GatewayConfig config;
  const CorsPolicy cors;
  // Routing: room → shard → its owner's index in room_nodes, else its
  // node in the static map of the configured nodes (the first ones).
  const StaticShardMap shard_map;
  RoomNodeSet room_nodes;
  ShardOwnerTable owners;
  boost::asio::io_context& io;
  GatewayMetrics metrics;
  // Null when auth is off.
  std::unique_ptr<JwtVerifier> verifier;
  RateLimiter rate_limiter;
  // Null: plain HTTP.
  std::unique_ptr<TlsContextSource> tls;
  // Null: no web root (config.web_root empty). Its reader threads are
  // joined by Drain, before the I/O context stops.
  std::unique_ptr<StaticFiles> static_files;
  std::unique_ptr<RoomFanouts> fanouts;
  // The Watch calls that carry the fan-outs' subscriptions (unused with
  // config.watch_upstream off).
  std::unique_ptr<WatchCalls> watch_calls;
  std::unique_ptr<SseKeepAlive> keepalive;
  // The single node's room service, called without gRPC (protocol/
  // direct_room_calls.h) for the unary calls; null: every call over gRPC.
  DirectRoomCalls* direct_room_calls = nullptr;

  // Set by Drain(): /readyz answers 503, responses close the connection.
  std::atomic<bool> draining{false};
  // HTTP requests between "head read" and "response written".
  std::atomic<int> requests_in_flight{0};
  // gRPC calls (unary and Subscribe) whose callbacks have not run yet; the
  // I/O context must outlive them because they post into it.
  std::atomic<int> grpc_calls_in_flight{0};
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_GATEWAY_CONTEXT_H_

// The public HTTP/1.1 + SSE replication API (shared/PROTOCOL.md): a
// stateless translator onto the RoomSync gRPC API. For each room with local
// SSE subscribers it holds ONE upstream Subscribe and writes each encoded
// frame, shared, to every session of that room.
//
// Thread-safety: Start() and the destructor from one thread; http_port()
// from any thread; Drain() once, from any thread but an I/O thread.
#ifndef ROOMSYNC_GATEWAY_GATEWAY_H_
#define ROOMSYNC_GATEWAY_GATEWAY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/jwt_verifier.h"
#include "protocol/document_envelope.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace roomsync {

class DirectRoomCalls;

// Rate limits and quotas (see rate_limiter.h); every limit is off at 0.
struct RateLimitConfig {
  // Token-bucket rates.
  double requests_per_second_per_ip = 0;
  double requests_per_second_per_subject = 0;
  double push_documents_per_second_per_ip = 0;
  double push_documents_per_second_per_subject = 0;
  // A bucket holds this many seconds of its rate: short bursts (a client
  // flushing its offline queue) pass, a sustained flood does not.
  double burst_seconds = 2;
  // Open SSE streams.
  int max_streams_per_ip = 0;
  int max_streams_per_subject = 0;
  // Keys remembered per bucket map (bounded memory; see TokenBuckets).
  size_t max_tracked_keys = 100000;
};

// HTTPS on the gateway's own port (often an ingress terminates TLS
// instead). Both empty: plain HTTP.
struct GatewayTlsConfig {
  std::string cert_file;  // PEM chain, leaf first
  std::string key_file;   // PEM private key
  bool enabled() const { return !cert_file.empty(); }
};

struct GatewayConfig {
  // Bearer-token authentication of every room endpoint. nullopt = auth
  // off: anyone who reaches the port reads and writes every room
  // (development only; Start logs a warning). The binaries default to jwt.
  std::optional<JwtConfig> jwt;
  // A JWT the gateway sends on its own upstream calls (the shared per-room
  // Subscribe), re-read whenever one opens. Empty: none, and the room
  // service must trust the gateway by its mTLS client certificate or run
  // without auth. Client requests always carry the client's own token.
  std::string upstream_token_file;
  RateLimitConfig rate_limits;
  GatewayTlsConfig tls;

  // host:port to listen on; port 0 picks a free one (see http_port()).
  std::string http_address = "127.0.0.1:8080";
  // host:port of a port of its own for /metrics (and /healthz), so that the
  // public port need not expose them: set, the public port answers /metrics
  // with 404. Empty: /metrics is on the public port.
  std::string metrics_address;
  // Origins allowed by CORS; empty = any origin (development only).
  std::vector<std::string> allowed_origins;
  DocumentLimits limits;
  // A request head larger than this is refused with 431.
  size_t max_header_bytes = 16 * 1024;
  // The whole request head must arrive within header_timeout of the
  // connection opening (slowloris); a keep-alive connection may then sit
  // idle for idle_timeout between requests.
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  // One timer for all SSE sessions sends ": keep-alive" at this interval.
  absl::Duration keepalive_interval = absl::Seconds(15);
  // Bytes queued for one SSE session before it gets RESYNC and is closed.
  size_t max_sse_queue_bytes = 1 << 20;
  // The kernel send buffer of each SSE socket (Linux doubles it); 0 leaves
  // it to autotuning, which lets a stalled client's socket grow to
  // net.ipv4.tcp_wmem's maximum (4 MiB) with the RESYNC queued behind it.
  int sse_send_buffer_bytes = 128 << 10;
  // A stream catch-up larger than this many documents answers RESYNC (the
  // client pulls instead, which pages efficiently).
  size_t max_sse_catch_up_documents = 10000;
  // A session whose socket accepts no byte for this long is closed (a
  // consumer that stopped reading must not pin its queue forever).
  absl::Duration sse_write_stall_timeout = absl::Seconds(30);
  // Deadline of every unary call to the room service.
  absl::Duration grpc_deadline = absl::Seconds(10);
  // Rooms' upstream subscriptions on one Watch call per room node (true),
  // or on a Subscribe call per room (the design before Watch).
  bool watch_upstream = true;
  // A room whose upstream subscription ended because its node moved it or
  // went away is subscribed again (on its new node, from its last
  // checkpoint) for this long before its sessions get RESYNC.
  absl::Duration upstream_retry_window = absl::Seconds(30);
  // A directory whose files are served on every GET/HEAD path outside the
  // API's (a web app on the API's origin; static_files.h). Empty: off, and
  // such paths are 404 like any unknown path.
  std::string web_root;
  // Complete history pages (history_pages.h) say "Cache-Control: public"
  // with auth on too, so that a CDN shares them between clients without
  // checking tokens (docs/security.md, "Cached history pages"). Off, they
  // are "private" with auth on; with auth off they are always public.
  bool public_history_cache = false;
  // I/O threads.
  int threads = 2;
};

// One room node the gateway routes to.
struct RoomNodeChannel {
  // host:port as configured (logs, errors); routing uses only the order.
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
};

// Opens a channel to the room node at `address` (host:port, as the node
// advertises itself), with the configured nodes' credentials.
using RoomNodeOpener =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const std::string& address)>;

class Gateway {
 public:
  // Binds the listener and starts serving. kInvalidArgument for a bad
  // config (a web_root that is not a readable directory, ...);
  // kUnavailable when the address cannot be bound.
  //
  // With several room nodes, every upstream call about a room (push, pull,
  // history, the shared Subscribe, a stream's catch-up) goes to the node
  // that owns the room's shard in a cluster::StaticShardMap of the nodes in
  // this order (shard s on node s % N): every gateway must get the same
  // list in the same order. With shard leases the gateway routes by the
  // lease table instead (RoomCluster.ShardOwners, read each second, and
  // wrong-owner answers); an owner at an address not in `room_nodes` is
  // called through a channel from `discover` (null: owners must be among
  // `room_nodes`; a shard owned elsewhere routes by the static map, and
  // its calls are refused as sent to the wrong owner).
  // /readyz answers 200 while at least one node serves (see
  // readiness_probe.h).
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const GatewayConfig& config,
                                                        std::vector<RoomNodeChannel> room_nodes,
                                                        RoomNodeOpener discover = nullptr);
  // One room service (the single node's in-process channel). With
  // `direct` (the same service, in this process), its unary calls (push,
  // pull, history, snapshots) skip gRPC; streams use the channel.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(
      const GatewayConfig& config, std::shared_ptr<grpc::Channel> room_service,
      DirectRoomCalls* direct = nullptr);

  // The bound HTTP port (useful with port 0).
  int http_port() const;
  // The bound metrics port; 0 without GatewayConfig::metrics_address.
  int metrics_port() const;

  // Stops accepting, answers /readyz with 503, lets in-flight requests
  // finish (at most `grace`), ends every SSE stream, cancels upstream
  // subscriptions and stops the I/O threads. Idempotent.
  void Drain(absl::Duration grace);

  // Drains with a short grace if Drain() was not called.
  virtual ~Gateway();

 private:
  class Impl;
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const GatewayConfig& config,
                                                        std::vector<RoomNodeChannel> room_nodes,
                                                        RoomNodeOpener discover,
                                                        DirectRoomCalls* direct);
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_GATEWAY_H_

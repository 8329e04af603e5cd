// A small HTTP/1.1 server for the operators' endpoints of a process, on a
// port of its own: Prometheus scrapes /metrics there and the kubelet probes
// /healthz and /readyz, so none of them needs the public port (and a
// status other than 200, which prometheus-cpp's Exposer cannot answer, is
// possible: /readyz says 503).
//
// One thread; handlers run on it and must not block (they read state that
// others keep up to date, e.g. services/room/store_health.h). Every
// resource is bounded: at most kMaxConnections at once (more are closed on
// accept), a request head of at most 8 KiB and no body, 10 s to send a
// request, GET and HEAD only.
#ifndef ROOMSYNC_OPS_OPS_HTTP_SERVER_H_
#define ROOMSYNC_OPS_OPS_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace roomsync {

struct OpsResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Path (exact, without the query) -> handler.
using OpsRoutes = std::map<std::string, std::function<OpsResponse()>, std::less<>>;

class OpsHttpServer {
 public:
  static constexpr int kMaxConnections = 64;

  // Listens on `address` ("host:port"; port 0 picks one) and serves
  // `routes` until destroyed. kInvalidArgument for a bad address,
  // kUnavailable when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<OpsHttpServer>> Start(std::string_view address,
                                                              OpsRoutes routes);

  virtual ~OpsHttpServer() = default;  // stops: closes the listener and every connection
  virtual int port() const = 0;
};

// /metrics: the Prometheus text exposition of `registry` (0.0.4).
OpsResponse MetricsResponse(prometheus::Collectable& registry);

}  // namespace roomsync

#endif  // ROOMSYNC_OPS_OPS_HTTP_SERVER_H_

// The gateway's Prometheus metrics over its own registry, served at
// /metrics. Thread-safe.
#ifndef ROOMSYNC_GATEWAY_GATEWAY_METRICS_H_
#define ROOMSYNC_GATEWAY_GATEWAY_METRICS_H_

#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
class Histogram;
}  // namespace prometheus

namespace roomsync {

class GatewayMetrics {
 public:
  GatewayMetrics();
  ~GatewayMetrics();

  // One finished request: `route` is the route pattern (bounded set).
  void RecordRequest(std::string_view route, int status, double latency_seconds);
  void SseSessionOpened();
  void SseSessionClosed();
  void SseFrameSent(size_t bytes);
  void SseResync();
  void UpstreamSubscriptionOpened();
  void UpstreamSubscriptionClosed();
  // gRPC calls carrying subscriptions: Watch calls, or per-room Subscribes.
  void UpstreamStreamOpened();
  void UpstreamStreamClosed();
  // A 429 from a rate limit or quota; `reason` names it (a bounded set).
  void RateLimited(std::string_view reason);
  // A request refused by authentication (401) or authorization (403).
  void AuthRefused(int status);

  // Prometheus text exposition format.
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Gauge* sse_sessions_;
  prometheus::Counter* sse_frames_;
  prometheus::Counter* sse_bytes_;
  prometheus::Counter* sse_resyncs_;
  prometheus::Gauge* upstream_subscriptions_;
  prometheus::Gauge* upstream_streams_;
  prometheus::Family<prometheus::Counter>* rate_limited_;
  prometheus::Family<prometheus::Counter>* auth_refused_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_GATEWAY_METRICS_H_

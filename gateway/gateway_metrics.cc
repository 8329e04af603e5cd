#include "gateway/gateway_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace roomsync {

GatewayMetrics::GatewayMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("roomsync_gateway_requests_total")
                   .Help("HTTP requests by route pattern and status")
                   .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                  .Name("roomsync_gateway_request_duration_seconds")
                  .Help("HTTP request latency by route pattern (streams: time to open)")
                  .Register(*registry_);
  sse_sessions_ = &prometheus::BuildGauge()
                       .Name("roomsync_gateway_sse_sessions")
                       .Help("Open SSE sessions")
                       .Register(*registry_)
                       .Add({});
  sse_frames_ = &prometheus::BuildCounter()
                     .Name("roomsync_gateway_sse_frames_sent_total")
                     .Help("SSE frames written to sessions (keep-alives included)")
                     .Register(*registry_)
                     .Add({});
  sse_bytes_ = &prometheus::BuildCounter()
                    .Name("roomsync_gateway_sse_bytes_sent_total")
                    .Help("SSE bytes written to sessions")
                    .Register(*registry_)
                    .Add({});
  sse_resyncs_ = &prometheus::BuildCounter()
                      .Name("roomsync_gateway_sse_resyncs_total")
                      .Help("SSE sessions ended with RESYNC")
                      .Register(*registry_)
                      .Add({});
  upstream_subscriptions_ = &prometheus::BuildGauge()
                                 .Name("roomsync_gateway_upstream_subscriptions")
                                 .Help("Rooms with an upstream subscription (SSE fan-outs)")
                                 .Register(*registry_)
                                 .Add({});
  upstream_streams_ = &prometheus::BuildGauge()
                           .Name("roomsync_gateway_upstream_streams")
                           .Help("gRPC calls to room nodes carrying subscriptions (Watch or Subscribe)")
                           .Register(*registry_)
                           .Add({});
  rate_limited_ = &prometheus::BuildCounter()
                       .Name("roomsync_gateway_rate_limited_total")
                       .Help("Requests refused with 429 by a rate limit or quota, by reason")
                       .Register(*registry_);
  auth_refused_ = &prometheus::BuildCounter()
                       .Name("roomsync_gateway_auth_refused_total")
                       .Help("Requests refused by authentication (401) or authorization (403)")
                       .Register(*registry_);
}

GatewayMetrics::~GatewayMetrics() = default;

void GatewayMetrics::RecordRequest(std::string_view route, int status, double latency_seconds) {
  requests_->Add({{"route", std::string(route)}, {"status", std::to_string(status)}})
      .Increment();
  // Buckets from 0.5 ms (a hot pull) to 10 s (the gRPC deadline).
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  latency_->Add({{"route", std::string(route)}}, kBuckets).Observe(latency_seconds);
}

void GatewayMetrics::SseSessionOpened() { sse_sessions_->Increment(); }
void GatewayMetrics::SseSessionClosed() { sse_sessions_->Decrement(); }
void GatewayMetrics::SseFrameSent(size_t bytes) {
  sse_frames_->Increment();
  sse_bytes_->Increment(static_cast<double>(bytes));
}
void GatewayMetrics::SseResync() { sse_resyncs_->Increment(); }
void GatewayMetrics::UpstreamSubscriptionOpened() { upstream_subscriptions_->Increment(); }
void GatewayMetrics::UpstreamSubscriptionClosed() { upstream_subscriptions_->Decrement(); }
void GatewayMetrics::UpstreamStreamOpened() { upstream_streams_->Increment(); }
void GatewayMetrics::UpstreamStreamClosed() { upstream_streams_->Decrement(); }
void GatewayMetrics::RateLimited(std::string_view reason) {
  rate_limited_->Add({{"reason", std::string(reason)}}).Increment();
}
void GatewayMetrics::AuthRefused(int status) {
  auth_refused_->Add({{"status", std::to_string(status)}}).Increment();
}

std::string GatewayMetrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace roomsync

// The gateway's rate limits and quotas (issue 4): requests per second and
// pushed documents per second, per client IP and per token subject, and
// concurrent streams per IP and per subject. Every limit is off at 0.
// A refusal is a 429 `rate_limited` with Retry-After, and counts in
// roomsync_gateway_rate_limited_total{reason}. Thread-safe.
#ifndef ROOMSYNC_GATEWAY_RATE_LIMITER_H_
#define ROOMSYNC_GATEWAY_RATE_LIMITER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "absl/time/time.h"
#include "gateway/api_response.h"
#include "gateway/gateway.h"
#include "gateway/token_buckets.h"

namespace roomsync {

class GatewayMetrics;

// The key for per-IP limits: the IPv4 address, or the /64 prefix of an
// IPv6 address (one host usually owns a whole /64, so per-address keys
// would be free to multiply).
std::string ClientIpKey(const boost::asio::ip::address& address);

// An open stream's place in the stream caps; released when destroyed.
class StreamSlot {
 public:
  StreamSlot(StreamCounts* by_subject, std::string subject, StreamCounts* by_ip, std::string ip);
  ~StreamSlot();
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;

 private:
  StreamCounts* by_subject_;
  std::string subject_;
  StreamCounts* by_ip_;
  std::string ip_;
};

class RateLimiter {
 public:
  RateLimiter(const RateLimitConfig& config, GatewayMetrics& metrics);

  // Each returns nullopt when allowed, else the 429 to answer. An empty
  // `subject` (auth off) skips the per-subject limit.
  // Before authentication, so that a flood of bad tokens is cut off early.
  std::optional<ApiResponse> AdmitRequestFromIp(std::string_view ip, absl::Time now);
  std::optional<ApiResponse> AdmitRequestFromSubject(std::string_view subject, absl::Time now);
  std::optional<ApiResponse> AdmitPushDocuments(std::string_view subject, std::string_view ip,
                                                size_t documents, absl::Time now);
  // A slot for one more stream, or the 429.
  std::optional<ApiResponse> AcquireStream(const std::string& subject, const std::string& ip,
                                           std::unique_ptr<StreamSlot>* slot);

 private:
  ApiResponse Refuse(std::string_view reason, std::string_view message,
                     absl::Duration retry_after);

  GatewayMetrics& metrics_;
  TokenBuckets requests_by_ip_;
  TokenBuckets requests_by_subject_;
  TokenBuckets documents_by_ip_;
  TokenBuckets documents_by_subject_;
  StreamCounts streams_by_ip_;
  StreamCounts streams_by_subject_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_RATE_LIMITER_H_

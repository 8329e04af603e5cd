#include "gateway/rate_limiter.h"

#include <array>
#include <cmath>

#include "gateway/gateway_metrics.h"

namespace roomsync {
namespace {

TokenBuckets MakeBuckets(double rate, const RateLimitConfig& config) {
  return TokenBuckets(rate, rate * config.burst_seconds, config.max_tracked_keys);
}

}  // namespace

std::string ClientIpKey(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  std::array<unsigned char, 16> bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

StreamSlot::StreamSlot(StreamCounts* by_subject, std::string subject, StreamCounts* by_ip,
                       std::string ip)
    : by_subject_(by_subject), subject_(std::move(subject)), by_ip_(by_ip), ip_(std::move(ip)) {}

StreamSlot::~StreamSlot() {
  if (by_subject_ != nullptr) by_subject_->Release(subject_);
  if (by_ip_ != nullptr) by_ip_->Release(ip_);
}

RateLimiter::RateLimiter(const RateLimitConfig& config, GatewayMetrics& metrics)
    : metrics_(metrics),
      requests_by_ip_(MakeBuckets(config.requests_per_second_per_ip, config)),
      requests_by_subject_(MakeBuckets(config.requests_per_second_per_subject, config)),
      documents_by_ip_(MakeBuckets(config.push_documents_per_second_per_ip, config)),
      documents_by_subject_(MakeBuckets(config.push_documents_per_second_per_subject, config)),
      streams_by_ip_(config.max_streams_per_ip),
      streams_by_subject_(config.max_streams_per_subject) {}

ApiResponse RateLimiter::Refuse(std::string_view reason, std::string_view message,
                                absl::Duration retry_after) {
  metrics_.RateLimited(reason);
  ApiResponse response = ErrorResponse(429, "rate_limited", message);
  // Whole seconds, rounded up: a client that waits that long will pass.
  response.retry_after_seconds =
      std::max(1, static_cast<int>(std::ceil(absl::ToDoubleSeconds(retry_after))));
  return response;
}

std::optional<ApiResponse> RateLimiter::AdmitRequestFromIp(std::string_view ip, absl::Time now) {
  if (auto wait = requests_by_ip_.Take(ip, 1, now)) {
    return Refuse("requests_per_ip", "too many requests from this address", *wait);
  }
  return std::nullopt;
}

std::optional<ApiResponse> RateLimiter::AdmitRequestFromSubject(std::string_view subject,
                                                                absl::Time now) {
  if (subject.empty()) return std::nullopt;
  if (auto wait = requests_by_subject_.Take(subject, 1, now)) {
    return Refuse("requests_per_subject", "too many requests for this token's subject", *wait);
  }
  return std::nullopt;
}

std::optional<ApiResponse> RateLimiter::AdmitPushDocuments(std::string_view subject,
                                                           std::string_view ip, size_t documents,
                                                           absl::Time now) {
  double cost = static_cast<double>(documents);
  if (!subject.empty()) {
    if (auto wait = documents_by_subject_.Take(subject, cost, now)) {
      return Refuse("push_documents_per_subject",
                    "too many pushed documents for this token's subject", *wait);
    }
  }
  if (auto wait = documents_by_ip_.Take(ip, cost, now)) {
    return Refuse("push_documents_per_ip", "too many pushed documents from this address", *wait);
  }
  return std::nullopt;
}

std::optional<ApiResponse> RateLimiter::AcquireStream(const std::string& subject,
                                                      const std::string& ip,
                                                      std::unique_ptr<StreamSlot>* slot) {
  // An open stream ends at an unknown time: "retry in a few seconds" is
  // the best estimate we have.
  constexpr absl::Duration kStreamRetryAfter = absl::Seconds(5);
  bool by_subject = !subject.empty();
  if (by_subject && !streams_by_subject_.TryAcquire(subject)) {
    return Refuse("streams_per_subject", "too many open streams for this token's subject",
                  kStreamRetryAfter);
  }
  if (!streams_by_ip_.TryAcquire(ip)) {
    if (by_subject) streams_by_subject_.Release(subject);
    return Refuse("streams_per_ip", "too many open streams from this address", kStreamRetryAfter);
  }
  *slot = std::make_unique<StreamSlot>(by_subject ? &streams_by_subject_ : nullptr, subject,
                                       &streams_by_ip_, ip);
  return std::nullopt;
}

}  // namespace roomsync

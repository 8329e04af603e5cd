#include "gateway/gateway_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "gateway/auth_flags.h"

ABSL_FLAG(double, rate_limit_requests_per_ip, 0,
          "requests per second per client IP (IPv6: per /64) on room endpoints; 0 = unlimited");
ABSL_FLAG(double, rate_limit_requests_per_subject, 0,
          "requests per second per token subject on room endpoints; 0 = unlimited");
ABSL_FLAG(double, rate_limit_push_documents_per_ip, 0,
          "pushed documents per second per client IP; 0 = unlimited");
ABSL_FLAG(double, rate_limit_push_documents_per_subject, 0,
          "pushed documents per second per token subject; 0 = unlimited");
ABSL_FLAG(double, rate_limit_burst_seconds, 2,
          "a rate limit lets this many seconds' worth through at once");
ABSL_FLAG(int, max_streams_per_ip, 0, "open SSE streams per client IP; 0 = unlimited");
ABSL_FLAG(int, max_streams_per_subject, 0, "open SSE streams per token subject; 0 = unlimited");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain for HTTPS on the HTTP port (reloaded when the file changes)");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key for --tls_cert_file");
ABSL_FLAG(int, sse_send_buffer_kib, 128,
          "kernel send buffer of each SSE socket in KiB (bounds kernel memory per "
          "stream and how much a stalled client holds before its RESYNC); 0 = autotuning");
ABSL_FLAG(std::string, web, "",
          "a directory served on the API's origin: every GET/HEAD path outside /v1/, /api/, "
          "/healthz, /readyz and /metrics is a file of it (a web app; docs/api.md, \"Static "
          "files\"); empty = off");
ABSL_FLAG(bool, public_history_cache, false,
          "with auth on, let shared caches (a CDN) keep complete history pages and serve them "
          "without checking tokens: \"Cache-Control: public\" instead of \"private\" "
          "(docs/security.md, \"Cached history pages\")");
ABSL_FLAG(std::string, upstream_streams, "watch",
          "how rooms' change streams come from the room nodes: watch (one Watch call per "
          "room node for all rooms) or per_room (one Subscribe call per room)");
ABSL_FLAG(int, grpc_deadline_ms, 10000,
          "deadline of each unary call to the room service, in ms (504 deadline_exceeded after it)");

namespace roomsync {

absl::StatusOr<GatewayConfig> GatewayConfigFromFlags() {
  GatewayConfig config;
  absl::StatusOr<std::optional<JwtConfig>> jwt = JwtConfigFromFlags();
  if (!jwt.ok()) return jwt.status();
  config.jwt = *std::move(jwt);

  RateLimitConfig& limits = config.rate_limits;
  struct RateFlag {
    const char* name;
    double value;
    double* target;
  } rates[] = {
      {"rate_limit_requests_per_ip", absl::GetFlag(FLAGS_rate_limit_requests_per_ip),
       &limits.requests_per_second_per_ip},
      {"rate_limit_requests_per_subject", absl::GetFlag(FLAGS_rate_limit_requests_per_subject),
       &limits.requests_per_second_per_subject},
      {"rate_limit_push_documents_per_ip", absl::GetFlag(FLAGS_rate_limit_push_documents_per_ip),
       &limits.push_documents_per_second_per_ip},
      {"rate_limit_push_documents_per_subject",
       absl::GetFlag(FLAGS_rate_limit_push_documents_per_subject),
       &limits.push_documents_per_second_per_subject},
  };
  for (const RateFlag& flag : rates) {
    if (!(flag.value >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag.name, " must not be negative"));
    }
    *flag.target = flag.value;
  }
  limits.burst_seconds = absl::GetFlag(FLAGS_rate_limit_burst_seconds);
  if (!(limits.burst_seconds > 0)) {
    return absl::InvalidArgumentError("--rate_limit_burst_seconds must be positive");
  }
  limits.max_streams_per_ip = absl::GetFlag(FLAGS_max_streams_per_ip);
  limits.max_streams_per_subject = absl::GetFlag(FLAGS_max_streams_per_subject);
  if (limits.max_streams_per_ip < 0 || limits.max_streams_per_subject < 0) {
    return absl::InvalidArgumentError("--max_streams_per_* must not be negative");
  }

  config.tls.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  config.tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert_file and --tls_key_file go together");
  }
  const int sse_send_buffer_kib = absl::GetFlag(FLAGS_sse_send_buffer_kib);
  if (sse_send_buffer_kib < 0 || sse_send_buffer_kib > (1 << 20)) {
    return absl::InvalidArgumentError("--sse_send_buffer_kib must be 0 to 1048576");
  }
  config.sse_send_buffer_bytes = sse_send_buffer_kib << 10;
  const int grpc_deadline_ms = absl::GetFlag(FLAGS_grpc_deadline_ms);
  if (grpc_deadline_ms <= 0) {
    return absl::InvalidArgumentError("--grpc_deadline_ms must be positive");
  }
  config.grpc_deadline = absl::Milliseconds(grpc_deadline_ms);
  const std::string upstream_streams = absl::GetFlag(FLAGS_upstream_streams);
  if (upstream_streams != "watch" && upstream_streams != "per_room") {
    return absl::InvalidArgumentError("--upstream_streams must be watch or per_room");
  }
  config.watch_upstream = upstream_streams == "watch";
  // Checked by Gateway::Start, which resolves the directory.
  config.web_root = absl::GetFlag(FLAGS_web);
  config.public_history_cache = absl::GetFlag(FLAGS_public_history_cache);
  return config;
}

}  // namespace roomsync

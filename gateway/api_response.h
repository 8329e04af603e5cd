// What a handler answers, independent of the HTTP library: the session turns
// it into a Beast response and adds CORS and connection headers.
#ifndef ROOMSYNC_GATEWAY_API_RESPONSE_H_
#define ROOMSYNC_GATEWAY_API_RESPONSE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace roomsync {

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  // > 0 adds "Retry-After: <seconds>" (429 and 503).
  int retry_after_seconds = 0;
  // For 405: the methods the route accepts ("Allow" header).
  std::string_view allow;
  // For 401: the "WWW-Authenticate" challenge (RFC 6750 §3).
  std::string_view www_authenticate;
  // Further headers (static files: ETag, Cache-Control, ...).
  std::vector<std::pair<std::string_view, std::string>> headers;
  // Set when the body is left out (HEAD, 304): the Content-Length of the
  // body the same request as a GET gets, sent instead of 0 (RFC 9110 8.6).
  std::optional<size_t> content_length;
};

// {"error":{"code":"…","message":"…"}} with `status`.
ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message);

// The HTTP status PROTOCOL.md gives a status code (INVALID_ARGUMENT 400,
// UNAVAILABLE 503, ...).
int HttpStatusOf(absl::StatusCode code);

// An error response for a locally detected problem: status from the code,
// protocol code from protocol/error_codes.h (attached or default).
ApiResponse ErrorFromStatus(const absl::Status& status);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_API_RESPONSE_H_

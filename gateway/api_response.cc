#include "gateway/api_response.h"

#include "base/log.h"
#include "base/string_view.h"
#include "protocol/error_codes.h"

namespace roomsync {
namespace {

// Clients back off this long on 429/503: long enough to let a draining
// node hand over, short enough that a retrying client catches up quickly.
constexpr int kRetryAfterSeconds = 1;

}  // namespace

ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  ApiResponse response;
  response.status = status;
  response.body.reserve(40 + code.size() + message.size());
  response.body += R"({"error":{"code":")";
  AppendJsonEscaped(response.body, code);
  response.body += R"(","message":")";
  AppendJsonEscaped(response.body, message);
  response.body += "\"}}";
  if (status == 429 || status == 503) response.retry_after_seconds = kRetryAfterSeconds;
  // Every 401 says how to authenticate, whichever layer refused.
  if (status == 401) response.www_authenticate = R"(Bearer realm="roomsync")";
  return response;
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    // CANCELLED from upstream: the room node cancelled the call (its
    // shutdown); the client never sees its own cancellation. Retry.
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

ApiResponse ErrorFromStatus(const absl::Status& status) {
  std::string error_code = ErrorCodeOf(status);
  // Size limits are INVALID_ARGUMENT inside (gRPC has no "too large") but
  // the protocol's 413 outside, whichever layer noticed them. A full room
  // is RESOURCE_EXHAUSTED inside, but waiting does not help (no 429): the
  // push does not fit.
  int http_status = error_code == "payload_too_large" || error_code == "room_quota_exceeded"
                        ? 413
                        : HttpStatusOf(status.code());
  std::string message(ToStd(status.message()));
  if (message.empty()) message = error_code;
  return ErrorResponse(http_status, error_code, message);
}

}  // namespace roomsync

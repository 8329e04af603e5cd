#include "protocol/error_codes.h"

#include "absl/types/optional.h"

#include "absl/strings/cord.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

constexpr std::string_view kPayloadUrl = "type.roomsync.dev/error-code";

}  // namespace

absl::Status WithErrorCode(absl::Status status, std::string_view code) {
  status.SetPayload(ToAbsl(kPayloadUrl), absl::Cord(ToAbsl(code)));
  return status;
}

std::string_view DefaultErrorCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return "ok";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return "invalid_argument";
    case absl::StatusCode::kUnauthenticated: return "unauthenticated";
    case absl::StatusCode::kPermissionDenied: return "permission_denied";
    case absl::StatusCode::kNotFound: return "not_found";
    case absl::StatusCode::kResourceExhausted: return "rate_limited";
    // kCancelled reaches a client only when a server cancels the call (a
    // room node shutting down mid-call): retryable, like unavailable.
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition: return "unavailable";
    case absl::StatusCode::kDeadlineExceeded: return "deadline_exceeded";
    default: return "internal";
  }
}

std::string ErrorCodeOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(ToAbsl(kPayloadUrl));
  if (payload.has_value()) return std::string(*payload);
  return std::string(DefaultErrorCode(status.code()));
}

}  // namespace roomsync

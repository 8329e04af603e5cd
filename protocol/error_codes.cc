#include "protocol/error_codes.h"

#include <algorithm>

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

bool AnnouncesFeature(std::string_view announced, std::string_view feature) {
  while (!announced.empty()) {
    const size_t comma = std::min(announced.find(','), announced.size());
    std::string_view item = announced.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == feature) return true;
    announced.remove_prefix(std::min(comma + 1, announced.size()));
  }
  return false;
}

}  // namespace roomsync

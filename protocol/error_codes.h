// The protocol's error codes ("invalid_argument", "timestamp_in_future",
// ...; PROTOCOL.md "Authentication and errors") carried on an absl::Status
// as a payload, so that the room service can name a specific code and the
// gRPC and HTTP layers can pass it on unchanged.
#ifndef ROOMSYNC_PROTOCOL_ERROR_CODES_H_
#define ROOMSYNC_PROTOCOL_ERROR_CODES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace roomsync {

// The gRPC trailing-metadata key that carries the specific code.
inline constexpr std::string_view kErrorCodeMetadataKey = "roomsync-error-code";
// The gRPC trailing-metadata key a room node adds to FAILED_PRECONDITION when it
// does not hold the room's shard: the owner's address, as far as it knows,
// for the caller to re-route.
inline constexpr std::string_view kOwnerMetadataKey = "roomsync-owner";
// The initial-metadata key by which each side of a Watch call announces
// what it reads beyond one request or event per message (roomsync.proto,
// WatchRequest); kWatchBatchFeature: batched requests or events.
inline constexpr std::string_view kWatchFeaturesMetadataKey = "roomsync-watch-features";
inline constexpr std::string_view kWatchBatchFeature = "batch";

// Whether `announced`, a kWatchFeaturesMetadataKey value (a comma-separated
// list), names `feature`.
bool AnnouncesFeature(std::string_view announced, std::string_view feature);

// Returns `status` with `code` attached as its protocol error code.
absl::Status WithErrorCode(absl::Status status, std::string_view code);

// The protocol error code of `status`: the attached one, else the default
// for its status code (kInvalidArgument -> "invalid_argument",
// kUnauthenticated -> "unauthenticated", ...).
std::string ErrorCodeOf(const absl::Status& status);

// The default protocol code for a status code.
std::string_view DefaultErrorCode(absl::StatusCode code);

}  // namespace roomsync

#endif  // ROOMSYNC_PROTOCOL_ERROR_CODES_H_

// Validation of room and collection names (PROTOCOL.md, "Rooms,
// collections, documents"). Each returns OK or kInvalidArgument with a
// message that says what is wrong (never echoing more than the name).
#ifndef ROOMSYNC_PROTOCOL_NAMES_H_
#define ROOMSYNC_PROTOCOL_NAMES_H_

#include <string_view>

#include "absl/status/status.h"

namespace roomsync {

// 1-128 characters of [A-Za-z0-9._~-], other than "." and "..".
absl::Status ValidateRoomName(std::string_view room);

// 1-64 characters of [a-z0-9_], the first a letter.
absl::Status ValidateCollectionName(std::string_view collection);

}  // namespace roomsync

#endif  // ROOMSYNC_PROTOCOL_NAMES_H_

// The room service's command-line flags (each also ROOMSYNC_<NAME>), shared
// by `roomsync-room` and the single-node `roomsync`, which link this file.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_FLAGS_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_FLAGS_H_

#include "absl/status/statusor.h"
#include "services/room/room_server.h"

namespace roomsync {

// Reads the parsed flags into a config; kInvalidArgument names the bad flag.
absl::StatusOr<RoomServerConfig> RoomServerConfigFromFlags();

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_FLAGS_H_

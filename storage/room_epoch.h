// Fresh room epochs. An epoch names one history of a room: if a room is
// ever recreated (data loss, restore), clients holding checkpoints from the
// old history must notice, so epochs are random rather than counters.
#ifndef ROOMSYNC_STORAGE_ROOM_EPOCH_H_
#define ROOMSYNC_STORAGE_ROOM_EPOCH_H_

#include <string>

#include "absl/status/statusor.h"

namespace roomsync::storage_internal {

// 16 random bytes from OpenSSL's CSPRNG as 32 lowercase hex characters.
// kInternal if the CSPRNG fails (it does not on a seeded Linux system).
absl::StatusOr<std::string> NewRoomEpoch();

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_ROOM_EPOCH_H_

// Turns RoomSync requests into the room's inputs, refusing bad ones whole
// with kInvalidArgument and a message that says what is wrong (and never
// quotes document contents).
#ifndef ROOMSYNC_SERVICES_ROOM_REQUEST_VALIDATION_H_
#define ROOMSYNC_SERVICES_ROOM_REQUEST_VALIDATION_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/room/room.h"
#include "services/room/room_config.h"

namespace roomsync {
namespace v1 {
class Checkpoint;
class PushRequest;
}  // namespace v1

// Validates the whole push (names, limits, every item) before anything is
// decided. `now` is the server clock for the future-timestamp check.
absl::StatusOr<PushPlan> PlanPush(const v1::PushRequest& request,
                                  const RoomServiceConfig& config, absl::Time now);

// Room and optional collection of a read or subscribe.
absl::Status ValidateReadTarget(const std::string& room, const std::string& collection,
                                const RoomServiceConfig& config);

// A checkpoint from a request; nullopt when unset (the beginning). Refuses
// negative seqs, a seq without epoch, and oversized epochs.
absl::StatusOr<std::optional<ClientCheckpoint>> ReadCheckpoint(bool present,
                                                               const v1::Checkpoint& checkpoint,
                                                               std::string_view field);

// batch_size / limit: 0 = default 100, else 1..1000.
absl::StatusOr<int> ReadPageSize(int requested, std::string_view field);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_REQUEST_VALIDATION_H_

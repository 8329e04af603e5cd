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
class PutSnapshotRequest;
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

// An encrypted snapshot's upload (docs/api.md, "Snapshots"): the room's
// name, a checkpoint of seq >= 1 with an epoch, 1..max_snapshot_bytes
// bytes (beyond: "payload_too_large"). Whether the checkpoint fits the
// room is the room's to decide (Room::PutSnapshot).
absl::StatusOr<RoomSnapshot> ValidateSnapshot(const v1::PutSnapshotRequest& request,
                                              const RoomServiceConfig& config);

// batch_size / limit: 0 = default 100, else 1..1000.
absl::StatusOr<int> ReadPageSize(int requested, std::string_view field);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_REQUEST_VALIDATION_H_

// Decides a group of pushes to one room: every item, in order, by its
// collection's policy, against the state the earlier items left (starting
// from the stored states), within the room's stored-bytes quota. Pure: the
// room does the store round trips around it.
#ifndef ROOMSYNC_SERVICES_ROOM_COMMIT_PLANNER_H_
#define ROOMSYNC_SERVICES_ROOM_COMMIT_PLANNER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "services/room/room.h"
#include "storage/store.h"

namespace roomsync {

class RoomMetrics;

// The distinct keys of a group, in first-seen order, for one Lookup.
struct GroupKeys {
  std::vector<DocumentKey> keys;
  absl::flat_hash_map<std::string, size_t> index;  // KeyOf(collection, id) -> keys[i]
};
GroupKeys CollectKeys(const std::vector<const PushPlan*>& pushes);

struct PlannedCommit {
  std::vector<PushOutcome> outcomes;      // per push: conflicts and accepted count
  std::vector<absl::Status> refusals;     // per push: OK, or why it was refused whole
  // One row per written key with its seq assigned (head.last_seq + 1, ...),
  // in the order of each key's last accepted write.
  std::vector<std::shared_ptr<StoredDocument>> writes;
  int64_t stored_bytes_delta = 0;         // what the writes add to the room
  uint64_t digest_delta = 0;              // what they XOR into its digest
};

// `stored[i]` is the stored state of keys.keys[i] (from Store::Lookup).
// max_room_bytes 0 = no quota; a push that would take the room past it is
// refused whole (kResourceExhausted, "room_quota_exceeded") and leaves no
// trace in the plan. maintain_digest false (benchmarks only) leaves
// digest_delta 0.
PlannedCommit PlanCommit(const std::vector<const PushPlan*>& pushes, const GroupKeys& keys,
                         std::vector<std::optional<StoredDocument>> stored,
                         const RoomHead& head, int64_t max_room_bytes, RoomMetrics* metrics,
                         bool maintain_digest = true);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_COMMIT_PLANNER_H_

// The rooms this service holds in memory, created on first use and evicted
// when idle. Thread-safe.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_REGISTRY_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_REGISTRY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/room/room.h"

namespace roomsync {

class RoomRegistry {
 public:
  explicit RoomRegistry(const RoomContext& context) : context_(context) {}

  // Where the rooms' store calls run.
  boost::asio::thread_pool& executor() const { return *context_.executor; }

  // The room, created (not yet loaded) if it is not in memory.
  std::shared_ptr<Room> Get(std::string_view name);

  // Drops rooms idle since before `idle_since` that nobody else references
  // (no call in flight, no subscriber). A reference can only be had through
  // Get, under the same lock, so an evicted room is never used again.
  // Returns how many rooms stay.
  size_t EvictIdle(absl::Time idle_since);

  void CloseAllSubscribers();

  // The rooms of `shard` moved to another node: each is told (Room::Moved)
  // and forgotten; a later Get makes a fresh one.
  void DropShard(int shard);

  // The room's live subscriptions on this node; 0 when it is not in memory
  // (a room with a subscriber is never evicted). Read-only: never creates
  // the room.
  size_t SubscriberCount(std::string_view name);

 private:
  const RoomContext context_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Room>> rooms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_REGISTRY_H_

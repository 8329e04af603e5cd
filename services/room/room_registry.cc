#include "services/room/room_registry.h"

#include "base/string_view.h"
#include "services/room/room_metrics.h"

namespace roomsync {

std::shared_ptr<Room> RoomRegistry::Get(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = rooms_.find(ToAbsl(name));
  if (it != rooms_.end()) return it->second;
  auto room = std::make_shared<Room>(std::string(name), context_);
  rooms_.emplace(std::string(name), room);
  context_.metrics->SetActiveRooms(rooms_.size());
  return room;
}

size_t RoomRegistry::EvictIdle(absl::Time idle_since) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(rooms_, [&](const auto& entry) {
    return entry.second.use_count() == 1 && entry.second->IsIdleSince(idle_since);
  });
  context_.metrics->SetActiveRooms(rooms_.size());
  return rooms_.size();
}

void RoomRegistry::DropShard(int shard) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(rooms_, [&](const auto& entry) {
    if (entry.second->shard() != shard) return false;
    entry.second->Moved();
    return true;
  });
  context_.metrics->SetActiveRooms(rooms_.size());
}

size_t RoomRegistry::SubscriberCount(std::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = rooms_.find(ToAbsl(name));
  return it == rooms_.end() ? 0 : it->second->subscriber_count();
}

void RoomRegistry::CloseAllSubscribers() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, room] : rooms_) room->CloseSubscribers();
}

}  // namespace roomsync

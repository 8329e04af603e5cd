// Rooms map to a fixed number of virtual shards by a stable hash (DESIGN.md,
// Sharding): the same room lands on the same shard in every build, process
// and platform, because the shard is persisted (leases, routing tables).
// std::hash and absl::Hash may change between builds, so neither is used.
#ifndef ROOMSYNC_CLUSTER_SHARD_MAP_H_
#define ROOMSYNC_CLUSTER_SHARD_MAP_H_

#include <cstdint>
#include <string_view>

namespace roomsync {

// Fixed for the life of a deployment: changing it moves most rooms.
inline constexpr int kShardCount = 256;

// FNV-1a, 64 bits, over the room name's bytes. Written here because it is
// five lines and its output is part of the stored state; no library in
// Debian promises a frozen hash of its own.
uint64_t StableRoomHash(std::string_view room);

// StableRoomHash(room) % kShardCount.
int ShardOf(std::string_view room);

}  // namespace roomsync

#endif  // ROOMSYNC_CLUSTER_SHARD_MAP_H_

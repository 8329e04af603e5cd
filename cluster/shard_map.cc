#include "cluster/shard_map.h"

namespace roomsync {

uint64_t StableRoomHash(std::string_view room) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
  for (unsigned char byte : room) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;  // FNV-1a prime
  }
  return hash;
}

int ShardOf(std::string_view room) {
  return static_cast<int>(StableRoomHash(room) % static_cast<uint64_t>(kShardCount));
}

}  // namespace roomsync

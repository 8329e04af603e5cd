// Rooms map to a fixed number of virtual shards by a stable hash (DESIGN.md,
// Sharding): the same room lands on the same shard in every build, process
// and platform, because the shard is persisted (leases, routing tables).
// std::hash and absl::Hash may change between builds, so neither is used.
#ifndef ROOMSYNC_CLUSTER_SHARD_MAP_H_
#define ROOMSYNC_CLUSTER_SHARD_MAP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace roomsync {

// Fixed for the life of a deployment: changing it moves most rooms.
inline constexpr int kShardCount = 256;

// FNV-1a, 64 bits, over the room name's bytes. Written here because it is
// five lines and its output is part of the stored state; no library in
// Debian promises a frozen hash of its own.
uint64_t StableRoomHash(std::string_view room);

// StableRoomHash(room) % kShardCount.
int ShardOf(std::string_view room);

// The routing table of a cluster without leases: N room node addresses,
// fixed at start, and shard s owned by node s % N. Every gateway given the
// same list in the same order sends a room to the same node. Changing the
// list moves rooms without a hand-off: the room's new node loads it from
// the store, and the commit fence (last_seq) keeps a moment of two writers
// correct (one gets kAborted and redoes its group).
//
// With leases (DESIGN.md, Sharding) it is the fallback: room nodes running
// with --shard_leases own shards through leases in the store and refuse
// other rooms, and a gateway routes a shard by the lease table
// (gateway/shard_owners.h) whenever that names its owner.
//
// Immutable, so safe to share between threads.
class StaticShardMap {
 public:
  // `nodes` must not be empty (ParseNodeList checks a flag's list).
  explicit StaticShardMap(std::vector<std::string> nodes);

  // The index in nodes() of the node that owns `room`'s shard.
  size_t NodeOf(std::string_view room) const;
  static size_t NodeOfShard(int shard, size_t node_count) {
    return static_cast<size_t>(shard) % node_count;
  }

  const std::vector<std::string>& nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<std::string> nodes_;
};

// "host:port,host:port,...": each entry trimmed of spaces; kInvalidArgument
// for an empty list, an empty entry or a repeated one (a repeated address
// would silently give that node twice the shards).
absl::StatusOr<std::vector<std::string>> ParseNodeList(std::string_view list);

}  // namespace roomsync

#endif  // ROOMSYNC_CLUSTER_SHARD_MAP_H_

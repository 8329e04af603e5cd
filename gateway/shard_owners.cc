#include "gateway/shard_owners.h"

#include <algorithm>

#include "cluster/shard_map.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

ShardOwnerTable::ShardOwnerTable(Resolver resolve)
    : resolve_(std::move(resolve)), owners_(kShardCount) {
  for (std::atomic<int>& owner : owners_) owner.store(-1, std::memory_order_relaxed);
}

int ShardOwnerTable::OwnerOf(int shard) const {
  if (shard < 0 || shard >= kShardCount) return -1;
  return owners_[shard].load(std::memory_order_relaxed);
}

bool ShardOwnerTable::Learn(int shard, std::string_view address) {
  const int index = resolve_(address);
  if (index < 0 || shard < 0 || shard >= kShardCount) return false;
  return owners_[shard].exchange(index, std::memory_order_relaxed) != index;
}

void ShardOwnerTable::Apply(const v1::ShardOwnersResponse& answer) {
  if (answer.owners().empty()) {
    for (std::atomic<int>& owner : owners_) owner.store(-1, std::memory_order_relaxed);
    return;
  }
  // A shard missing from a non-empty answer is between owners: keep the
  // last one known, whose refusal will name the next.
  for (const v1::ShardOwner& owner : answer.owners()) {
    if (owner.shard() < 0 || owner.shard() >= kShardCount) continue;
    owners_[owner.shard()].store(resolve_(owner.address()), std::memory_order_relaxed);
  }
}

}  // namespace roomsync

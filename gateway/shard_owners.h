// Which configured room node owns each shard, as the room nodes' lease
// table last said (RoomCluster.ShardOwners, read about once a second) or
// as a node's wrong-owner answer (roomsync-owner) just said. A shard with
// no known owner routes by the static map. Reads are lock-free: every
// upstream call looks its room's shard up.
//
// An owner is recorded by its index in the gateway's RoomNodeSet; the
// resolver maps an address to that index, adding a discovered node when it
// can (-1: the owner is ignored).
#ifndef ROOMSYNC_GATEWAY_SHARD_OWNERS_H_
#define ROOMSYNC_GATEWAY_SHARD_OWNERS_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace roomsync {

namespace v1 {
class ShardOwnersResponse;
}  // namespace v1

class ShardOwnerTable {
 public:
  using Resolver = std::function<int(std::string_view address)>;
  explicit ShardOwnerTable(Resolver resolve);

  // The owner's node index, or -1 when unknown.
  int OwnerOf(int shard) const;
  // Records `address` as the owner of `shard`; false when it resolves to
  // no node or is already the known owner.
  bool Learn(int shard, std::string_view address);
  // Takes a ShardOwners answer: listed shards get their owner; an answer
  // without any (nodes without leases) forgets every owner.
  void Apply(const v1::ShardOwnersResponse& answer);

 private:
  const Resolver resolve_;
  std::vector<std::atomic<int>> owners_;  // by shard
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_SHARD_OWNERS_H_

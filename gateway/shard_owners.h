// Which configured room node owns each shard, as the room nodes' lease
// table last said (RoomCluster.ShardOwners, read about once a second) or
// as a node's wrong-owner answer (roomsync-owner) just said. A shard with
// no known owner routes by the static map. Reads are lock-free: every
// upstream call looks its room's shard up.
//
// Owners must be configured nodes (--room_service lists every room node by
// the address it advertises); an unknown address is ignored.
#ifndef ROOMSYNC_GATEWAY_SHARD_OWNERS_H_
#define ROOMSYNC_GATEWAY_SHARD_OWNERS_H_

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

namespace roomsync {

namespace v1 {
class ShardOwnersResponse;
}  // namespace v1

class ShardOwnerTable {
 public:
  explicit ShardOwnerTable(std::vector<std::string> node_addresses);

  // The owner's index among the configured nodes, or -1 when unknown.
  int OwnerOf(int shard) const;
  // Records `address` as the owner of `shard`; false when it is not a
  // configured node or already the known owner.
  bool Learn(int shard, std::string_view address);
  // Takes a ShardOwners answer: listed shards get their owner; an answer
  // without any (nodes without leases) forgets every owner.
  void Apply(const v1::ShardOwnersResponse& answer);

 private:
  int IndexOf(std::string_view address) const;

  const std::vector<std::string> addresses_;
  std::vector<std::atomic<int>> owners_;  // by shard
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_SHARD_OWNERS_H_

#include "services/room/room_cluster_service.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "cluster/shard_map.h"
#include "services/room/room_auth.h"
#include "storage/store.h"

namespace roomsync {

grpc::ServerUnaryReactor* RoomClusterService::ShardOwners(grpc::CallbackServerContext* context,
                                                          const v1::ShardOwnersRequest*,
                                                          v1::ShardOwnersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = authorizer_.Authorize(*context, "", RoomCall::kClusterMetadata);
  // A short read: answered on the callback thread rather than handed off.
  absl::StatusOr<std::vector<ShardLease>> leases =
      status.ok() ? store_.ListShardLeases() : absl::StatusOr<std::vector<ShardLease>>(status);
  if (!leases.ok()) {
    reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(leases.status().code()),
                                 std::string(leases.status().message())));
    return reactor;
  }
  response->set_shard_count(kShardCount);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (const ShardLease& lease : *leases) {
    if (lease.expires_at_ms <= now_ms || lease.shard >= kShardCount) continue;
    v1::ShardOwner* owner = response->add_owners();
    owner->set_shard(lease.shard);
    owner->set_address(lease.address);
    owner->set_epoch(lease.epoch);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace roomsync

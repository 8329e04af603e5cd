// roomsyncctl's cluster commands (docs/operations.md): `shards` (the lease
// table and the live members, RoomAdmin.ListShards), `drain NODE_ID`
// (RoomAdmin.DrainNode on that node, then wait until it holds no shard),
// and the pieces `rooms list|show` and `check` take from the cluster: each
// room's subscriber count from its owner node, the lease table's problems.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_CLUSTER_COMMANDS_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_CLUSTER_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "roomsync/v1/roomsync_admin.pb.h"
#include "tools/roomsyncctl/admin_connection.h"
#include "tools/roomsyncctl/args.h"

namespace roomsync::ctl {

inline constexpr char kShardsUsage[] = "roomsyncctl shards";
extern const char kShardsSummary[];
int Shards(const ParsedArgs& args, std::ostream& out, std::ostream& err);

inline constexpr char kDrainUsage[] = "roomsyncctl drain NODE_ID [--timeout 60s]";
extern const char kDrainSummary[];
int Drain(const ParsedArgs& args, std::ostream& out, std::ostream& err);

// Fills the subscriber counts the answering node could not give (rooms
// whose shard another node holds: RoomInfo.subscribers_counted false) by
// asking each owner address once (CountSubscribers, the same connection
// options). A room whose owner cannot be asked, or moved meanwhile, stays
// uncounted; each failing owner is named on `err`. Returns how many rooms
// stay uncounted.
int CountSubscribersAtOwners(const ParsedArgs& args, std::vector<v1::RoomInfo>& rooms,
                             std::ostream& err);

// The lease table's problems for `check --all`: ListShards on `admin`.
// FAILED_PRECONDITION (a node without shard leases) gives checked=false.
struct LeaseCheck {
  bool checked = false;
  int leases = 0;
  std::vector<std::string> problems;
};
grpc::Status CheckLeases(const Admin& admin, LeaseCheck& check);

// "0-3,7,9-12" for sorted, distinct shards; "-" for none.
std::string ShardRanges(const std::vector<int>& shards);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_CLUSTER_COMMANDS_H_

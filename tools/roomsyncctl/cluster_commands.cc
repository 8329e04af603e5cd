#include "tools/roomsyncctl/cluster_commands.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tools/roomsyncctl/commands.h"
#include "tools/roomsyncctl/export_format.h"

namespace roomsync::ctl {

const char kShardsSummary[] =
    "Shows the shard leases (shard, owner node and address, epoch, expiry) and the live "
    "members of the cluster with the shards each holds, as the store holds them. Table: one "
    "line per member, then the shards of each owner; --output json: every lease too. Any node "
    "with --shard_leases answers (exit 1 on a node without them).";

const char kDrainSummary[] =
    "Drains a room node before it is stopped: finds NODE_ID's address with `shards` on "
    "--target, asks that node (same token and TLS options) to hand every shard over at once "
    "and take none again, then waits until the lease table shows it holding none. Prints how "
    "many shards it handed over and how long it took. --timeout bounds the whole drain "
    "(default 60s; exit 1 when the node still holds shards then).";

namespace {

// How often drain reads the lease table while it waits.
constexpr absl::Duration kDrainPollEvery = absl::Milliseconds(200);
// Rooms per CountSubscribers call: the server's limit.
constexpr int kCountSubscribersBatch = 1000;

grpc::Status ListShardsOn(const Admin& admin, v1::ListShardsResponse& response) {
  grpc::ClientContext context;
  admin.Prepare(context);
  return admin.stub->ListShards(&context, v1::ListShardsRequest(), &response);
}

// Shards the lease table shows `node_id` holding (unexpired leases).
int HeldBy(const v1::ListShardsResponse& table, const std::string& node_id) {
  return static_cast<int>(std::count_if(
      table.leases().begin(), table.leases().end(),
      [&](const v1::ShardLeaseInfo& l) { return !l.expired() && l.owner_node() == node_id; }));
}

// Shards held by nobody: no lease, or an expired one.
int FreeShards(const v1::ListShardsResponse& table) {
  int held = 0;
  for (const v1::ShardLeaseInfo& lease : table.leases()) {
    if (!lease.expired() && lease.shard() >= 0 && lease.shard() < table.shard_count()) ++held;
  }
  return table.shard_count() - held;
}

std::string ShardsJson(const v1::ListShardsResponse& r) {
  std::string json = absl::StrCat("{\"node_id\":", JsonString(r.node_id()),
                                  ",\"now_ms\":", r.now_ms(), ",\"shard_count\":", r.shard_count(),
                                  ",\"free\":", FreeShards(r), ",\"members\":[");
  for (int i = 0; i < r.members_size(); ++i) {
    const v1::ClusterMember& m = r.members(i);
    absl::StrAppend(&json, i ? "," : "", "{\"node_id\":", JsonString(m.node_id()),
                    ",\"address\":", JsonString(m.address()), ",\"shards\":", m.shards(), "}");
  }
  absl::StrAppend(&json, "],\"leases\":[");
  for (int i = 0; i < r.leases_size(); ++i) {
    const v1::ShardLeaseInfo& l = r.leases(i);
    absl::StrAppend(&json, i ? "," : "", "{\"shard\":", l.shard(),
                    ",\"owner_node\":", JsonString(l.owner_node()),
                    ",\"owner_address\":", JsonString(l.owner_address()), ",\"epoch\":", l.epoch(),
                    ",\"expires_at_ms\":", l.expires_at_ms(),
                    ",\"expired\":", l.expired() ? "true" : "false", "}");
  }
  absl::StrAppend(&json, "],\"problems\":[");
  for (int i = 0; i < r.problems_size(); ++i) {
    absl::StrAppend(&json, i ? "," : "", JsonString(r.problems(i)));
  }
  absl::StrAppend(&json, "]}");
  return json;
}

void PrintShards(const v1::ListShardsResponse& r, std::ostream& out) {
  std::vector<std::vector<std::string>> members = {{"MEMBER", "ADDRESS", "SHARDS"}};
  for (const v1::ClusterMember& m : r.members()) {
    members.push_back({m.node_id(), m.address(), absl::StrCat(m.shards())});
  }
  PrintTable(out, members);
  // Every owner of an unexpired lease, members or not (a node that left
  // without releasing holds its shards until they expire).
  std::map<std::string, std::vector<int>> shards_of;
  std::map<std::string, std::string> address_of;
  for (const v1::ShardLeaseInfo& l : r.leases()) {
    if (l.expired()) continue;
    shards_of[l.owner_node()].push_back(l.shard());
    address_of[l.owner_node()] = l.owner_address();
  }
  std::vector<std::vector<std::string>> owners = {{"OWNER", "ADDRESS", "SHARDS", "RANGES"}};
  for (auto& [owner, shards] : shards_of) {
    std::sort(shards.begin(), shards.end());
    const bool member = std::any_of(r.members().begin(), r.members().end(),
                                    [&](const v1::ClusterMember& m) { return m.node_id() == owner; });
    owners.push_back({member ? owner : absl::StrCat(owner, " (not a member)"), address_of[owner],
                      absl::StrCat(shards.size()), ShardRanges(shards)});
  }
  out << "\n";
  PrintTable(out, owners);
  out << "\n"
      << r.shard_count() << " shards: " << r.shard_count() - FreeShards(r) << " held by "
      << shards_of.size() << (shards_of.size() == 1 ? " node" : " nodes") << ", " << FreeShards(r)
      << " free (no lease, or expired)\n";
  for (const std::string& problem : r.problems()) out << "PROBLEM: " << problem << "\n";
}

}  // namespace

std::string ShardRanges(const std::vector<int>& shards) {
  if (shards.empty()) return "-";
  std::vector<std::string> ranges;
  for (size_t i = 0; i < shards.size();) {
    size_t j = i;
    while (j + 1 < shards.size() && shards[j + 1] == shards[j] + 1) ++j;
    ranges.push_back(j == i ? absl::StrCat(shards[i]) : absl::StrCat(shards[i], "-", shards[j]));
    i = j + 1;
  }
  return absl::StrJoin(ranges, ",");
}

int Shards(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "shards", admin.status());
  v1::ListShardsResponse response;
  grpc::Status status = ListShardsOn(*admin, response);
  if (!status.ok()) return Fail(err, "shards", status);
  if (JsonOutput(args)) {
    out << ShardsJson(response) << "\n";
  } else {
    PrintShards(response, out);
  }
  return kExitOk;
}

int Drain(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  const std::string& node_id = args.positional[0];
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "drain", admin.status());
  const absl::Time started = absl::Now();
  const absl::Time deadline = started + admin->timeout;
  // Each call gets what is left of the drain's time.
  auto remaining = [&] { return std::max(deadline - absl::Now(), absl::Milliseconds(100)); };

  v1::ListShardsResponse table;
  grpc::Status status = ListShardsOn(*admin, table);
  if (!status.ok()) return Fail(err, "drain: reading the lease table", status);
  std::string address;
  for (const v1::ClusterMember& m : table.members()) {
    if (m.node_id() == node_id) address = m.address();
  }
  // A node that left the membership but still holds leases (a drain that
  // did not finish) is drained again through its leases' address.
  for (const v1::ShardLeaseInfo& l : table.leases()) {
    if (address.empty() && !l.expired() && l.owner_node() == node_id) address = l.owner_address();
  }
  if (address.empty()) {
    std::vector<std::string> members;
    for (const v1::ClusterMember& m : table.members()) members.push_back(m.node_id());
    return Fail(err, "drain",
                absl::NotFoundError(absl::StrCat(
                    "no live member or lease holder is named \"", node_id, "\" (members: ",
                    members.empty() ? "none" : absl::StrJoin(members, ", "), ")")));
  }
  const int held_before = HeldBy(table, node_id);

  absl::StatusOr<Admin> node = Connect(args, address);
  if (!node.ok()) return Fail(err, "drain", node.status());
  node->timeout = remaining();
  v1::DrainNodeRequest request;
  request.set_node_id(node_id);
  v1::DrainNodeResponse drained;
  {
    grpc::ClientContext context;
    node->Prepare(context);
    status = node->stub->DrainNode(&context, request, &drained);
  }
  if (!status.ok()) return Fail(err, absl::StrCat("drain ", node_id, " at ", address), status);

  // The node released its leases before it answered; wait until the table
  // shows it (a drain that failed half-way shows here as leases left).
  int held = held_before;
  for (;;) {
    admin->timeout = remaining();
    status = ListShardsOn(*admin, table);
    if (status.ok()) {
      held = HeldBy(table, node_id);
      if (held == 0) break;
    }
    if (absl::Now() >= deadline) {
      if (!status.ok()) return Fail(err, "drain: reading the lease table", status);
      return Fail(err, "drain",
                  absl::DeadlineExceededError(absl::StrCat(
                      node_id, " still holds ", held, " shards after ",
                      absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1))))));
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(kDrainPollEvery));
  }
  const absl::Duration took = absl::Now() - started;
  const int free = FreeShards(table);
  const int others = table.shard_count() - free;
  if (JsonOutput(args)) {
    out << "{\"node_id\":" << JsonString(node_id) << ",\"address\":" << JsonString(address)
        << ",\"released\":" << drained.released() << ",\"held_before\":" << held_before
        << ",\"seconds\":" << absl::ToDoubleSeconds(took) << ",\"held_by_others\":" << others
        << ",\"free\":" << free << "}\n";
  } else {
    out << "drained " << node_id << " (" << address << "): handed over " << drained.released()
        << " shards in " << absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1)))
        << "; other nodes hold " << others << " of " << table.shard_count() << ", " << free
        << " not taken yet\n";
  }
  return kExitOk;
}

int CountSubscribersAtOwners(const ParsedArgs& args, std::vector<v1::RoomInfo>& rooms,
                             std::ostream& err) {
  std::map<std::string, std::vector<size_t>> by_owner;
  int uncounted = 0;
  for (size_t i = 0; i < rooms.size(); ++i) {
    if (rooms[i].subscribers_counted()) continue;
    ++uncounted;
    if (!rooms[i].owner_address().empty()) by_owner[rooms[i].owner_address()].push_back(i);
  }
  for (const auto& [address, indexes] : by_owner) {
    absl::StatusOr<Admin> owner = Connect(args, address);
    if (!owner.ok()) {
      Fail(err, absl::StrCat("subscribers: connecting to ", address), owner.status());
      continue;
    }
    for (size_t begin = 0; begin < indexes.size(); begin += kCountSubscribersBatch) {
      const size_t end = std::min(indexes.size(), begin + kCountSubscribersBatch);
      v1::CountSubscribersRequest request;
      for (size_t k = begin; k < end; ++k) request.add_rooms(rooms[indexes[k]].room());
      v1::CountSubscribersResponse response;
      grpc::ClientContext context;
      owner->Prepare(context);
      grpc::Status status = owner->stub->CountSubscribers(&context, request, &response);
      if (!status.ok() || response.subscribers_size() != request.rooms_size() ||
          response.held_size() != request.rooms_size()) {
        Fail(err, absl::StrCat("subscribers: asking the owner ", address),
             status.ok() ? absl::InternalError("a malformed answer") : ToAbsl(status));
        break;
      }
      for (size_t k = begin; k < end; ++k) {
        const int j = static_cast<int>(k - begin);
        if (!response.held(j)) continue;  // moved since the listing
        rooms[indexes[k]].set_subscribers(response.subscribers(j));
        rooms[indexes[k]].set_subscribers_counted(true);
        --uncounted;
      }
    }
  }
  return uncounted;
}

grpc::Status CheckLeases(const Admin& admin, LeaseCheck& check) {
  v1::ListShardsResponse table;
  grpc::Status status = ListShardsOn(admin, table);
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) return grpc::Status::OK;
  if (!status.ok()) return status;
  check.checked = true;
  check.leases = table.leases_size();
  check.problems.assign(table.problems().begin(), table.problems().end());
  return grpc::Status::OK;
}

}  // namespace roomsync::ctl

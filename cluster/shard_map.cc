#include "cluster/shard_map.h"

#include <cassert>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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

StaticShardMap::StaticShardMap(std::vector<std::string> nodes) : nodes_(std::move(nodes)) {
  assert(!nodes_.empty());
}

size_t StaticShardMap::NodeOf(std::string_view room) const {
  return NodeOfShard(ShardOf(room), nodes_.size());
}

absl::StatusOr<std::vector<std::string>> ParseNodeList(std::string_view list_in) {
  // Debian's Abseil has its own string_view (see base/string_view.h).
  const absl::string_view list(list_in.data(), list_in.size());
  std::vector<std::string> nodes;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty entry in the node list \"", list, "\""));
    }
    if (!seen.emplace(entry).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", entry, " appears twice in \"", list, "\""));
    }
    nodes.emplace_back(entry);
  }
  return nodes;
}

}  // namespace roomsync

// The shard of a room is stored state (leases, routing): these values must
// never change. They are FNV-1a 64 as published (the empty string and "a"
// are the reference vectors), reduced modulo 256.
#include "cluster/shard_map.h"

#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

namespace roomsync {
namespace {

TEST(ShardMap, HashIsFnv1a64) {
  EXPECT_EQ(StableRoomHash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(StableRoomHash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(StableRoomHash("foobar"), 0x85944171f73967e8ULL);
}

TEST(ShardMap, ShardsArePinned) {
  EXPECT_EQ(ShardOf(""), 0x25);
  EXPECT_EQ(ShardOf("a"), 0x8c);
  EXPECT_EQ(ShardOf("foobar"), 0xe8);
}

TEST(ShardMap, RoomsSpreadOverShards) {
  std::vector<int> count(kShardCount, 0);
  constexpr int kRooms = 100'000;
  for (int i = 0; i < kRooms; ++i) {
    int shard = ShardOf("room-" + std::to_string(i));
    ASSERT_GE(shard, 0);
    ASSERT_LT(shard, kShardCount);
    ++count[shard];
  }
  const int mean = kRooms / kShardCount;  // 390
  for (int shard = 0; shard < kShardCount; ++shard) {
    EXPECT_GT(count[shard], mean * 3 / 4) << "shard " << shard;
    EXPECT_LT(count[shard], mean * 5 / 4) << "shard " << shard;
  }
}

// Shard s belongs to node s % N: with the pinned shards above, these are
// fixed too (computed independently with a Python FNV-1a).
TEST(StaticShardMap, NodesArePinned) {
  StaticShardMap two({"a:1", "b:1"});
  StaticShardMap three({"a:1", "b:1", "c:1"});
  EXPECT_EQ(ShardOf("lobby"), 51);
  EXPECT_EQ(ShardOf("room-0"), 255);
  EXPECT_EQ(ShardOf("room-1"), 76);
  EXPECT_EQ(ShardOf("room-2"), 101);
  EXPECT_EQ(two.NodeOf("lobby"), 1u);
  EXPECT_EQ(two.NodeOf("room-1"), 0u);
  EXPECT_EQ(three.NodeOf(""), 1u);
  EXPECT_EQ(three.NodeOf("a"), 2u);
  EXPECT_EQ(three.NodeOf("foobar"), 1u);
  EXPECT_EQ(three.NodeOf("lobby"), 0u);
  EXPECT_EQ(three.NodeOf("room-0"), 0u);
  EXPECT_EQ(three.NodeOf("room-1"), 1u);
  EXPECT_EQ(three.NodeOf("room-2"), 2u);
  EXPECT_EQ(StaticShardMap({"only:1"}).NodeOf("anything"), 0u);
  for (int shard = 0; shard < kShardCount; ++shard) {
    EXPECT_EQ(StaticShardMap::NodeOfShard(shard, 3), static_cast<size_t>(shard % 3));
  }
}

TEST(StaticShardMap, RoomsSpreadEvenlyOverThreeNodes) {
  StaticShardMap map({"a:1", "b:1", "c:1"});
  std::vector<int> count(3, 0);
  constexpr int kRooms = 10'000;
  for (int i = 0; i < kRooms; ++i) ++count[map.NodeOf("room-" + std::to_string(i))];
  // 256 shards over 3 nodes: 86, 85, 85 shards, so about a third each.
  for (int node = 0; node < 3; ++node) {
    EXPECT_GT(count[node], kRooms * 30 / 100) << "node " << node;
    EXPECT_LT(count[node], kRooms * 37 / 100) << "node " << node;
  }
}

TEST(StaticShardMap, SameRoomSameNode) {
  StaticShardMap map({"a:1", "b:1", "c:1"});
  // A second map from the same list (another gateway) agrees, every time.
  StaticShardMap other({"a:1", "b:1", "c:1"});
  std::unordered_map<std::string, size_t> first;
  for (int pass = 0; pass < 3; ++pass) {
    for (int i = 0; i < 1000; ++i) {
      std::string room = "chat/" + std::to_string(i * 7919);
      size_t node = map.NodeOf(room);
      ASSERT_LT(node, 3u);
      EXPECT_EQ(other.NodeOf(room), node);
      auto [it, inserted] = first.emplace(room, node);
      if (!inserted) {
        EXPECT_EQ(it->second, node) << room;
      }
    }
  }
}

TEST(ParseNodeList, SplitsTrimsAndRefusesEmptyOrRepeatedEntries) {
  absl::StatusOr<std::vector<std::string>> one = ParseNodeList("127.0.0.1:7070");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, std::vector<std::string>{"127.0.0.1:7070"});
  absl::StatusOr<std::vector<std::string>> three = ParseNodeList("a:1, b:2 ,c:3");
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(*three, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  for (const char* bad : {"", "a:1,", ",a:1", "a:1,,b:2", "a:1, ", "a:1,a:1"}) {
    EXPECT_EQ(ParseNodeList(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace roomsync

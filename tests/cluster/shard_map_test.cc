// The shard of a room is stored state (leases, routing): these values must
// never change. They are FNV-1a 64 as published (the empty string and "a"
// are the reference vectors), reduced modulo 256.
#include "cluster/shard_map.h"

#include <string>
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

}  // namespace
}  // namespace roomsync

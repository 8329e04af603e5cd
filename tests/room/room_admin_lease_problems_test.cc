// LeaseProblems, the lease-table part of RoomAdmin.CheckRoom and
// ListShards (roomsyncctl check): what the stored lease rows can show.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/room/room_admin_service.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ShardLease Lease(int shard, std::string owner, int64_t epoch) {
  return ShardLease{shard, owner, owner + ":7070", epoch, 1'700'000'000'000};
}

TEST(LeaseProblems, AHealthyTableHasNone) {
  EXPECT_THAT(LeaseProblems({Lease(0, "a", 1), Lease(1, "b", 7), Lease(255, "a", 3)}, 256),
              IsEmpty());
  EXPECT_THAT(LeaseProblems({}, 256), IsEmpty());
}

TEST(LeaseProblems, NamesAnEpochBelowOne) {
  EXPECT_THAT(LeaseProblems({Lease(4, "a", 0), Lease(5, "a", 2), Lease(6, "b", -3)}, 256),
              ElementsAre(HasSubstr("shard 4: the lease of a has epoch 0; lease epochs start at 1"),
                          HasSubstr("shard 6: the lease of b has epoch -3")));
}

TEST(LeaseProblems, NamesShardsOutsideTheMapDuplicatesAndMissingOwners) {
  EXPECT_THAT(LeaseProblems({Lease(256, "a", 1), Lease(-1, "a", 1), Lease(3, "a", 1),
                             Lease(3, "b", 2), Lease(9, "", 1)},
                            256),
              ElementsAre(HasSubstr("shard 256 (held by a) is outside 0..255"),
                          HasSubstr("shard -1 (held by a) is outside 0..255"),
                          HasSubstr("shard 3 has more than one lease"),
                          HasSubstr("shard 9: the lease names no owner")));
}

TEST(LeaseProblems, OnlyShardLimitsTheCheckToOneRoomsShard) {
  const std::vector<ShardLease> leases = {Lease(4, "a", 0), Lease(5, "a", 0)};
  EXPECT_THAT(LeaseProblems(leases, 256, /*only_shard=*/5),
              ElementsAre(HasSubstr("shard 5: the lease of a has epoch 0")));
  EXPECT_THAT(LeaseProblems(leases, 256, /*only_shard=*/6), IsEmpty());
}

}  // namespace
}  // namespace roomsync

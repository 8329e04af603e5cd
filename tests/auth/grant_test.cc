#include "auth/grant.h"

#include <gtest/gtest.h>

namespace roomsync {
namespace {

Grant GrantFor(std::vector<std::string> rooms, bool can_write) {
  return Grant{"user-1", std::move(rooms), can_write, absl::InfiniteFuture()};
}

TEST(Grant, AllowsExactRoomNamesOnly) {
  Grant grant = GrantFor({"team-a"}, false);
  EXPECT_TRUE(grant.AllowsRoom("team-a"));
  EXPECT_FALSE(grant.AllowsRoom("team-ab"));
  EXPECT_FALSE(grant.AllowsRoom("team-"));
  EXPECT_FALSE(grant.AllowsRoom("TEAM-A"));
  EXPECT_FALSE(grant.AllowsRoom(""));
}

TEST(Grant, TrailingStarIsAPrefixMatch) {
  Grant grant = GrantFor({"team-a/*"}, false);
  EXPECT_TRUE(grant.AllowsRoom("team-a/notes"));
  EXPECT_TRUE(grant.AllowsRoom("team-a/"));
  EXPECT_FALSE(grant.AllowsRoom("team-a"));
  EXPECT_FALSE(grant.AllowsRoom("team-b/notes"));
}

TEST(Grant, StarAloneIsEveryRoomAndStarElsewhereIsLiteral) {
  EXPECT_TRUE(GrantFor({"*"}, false).AllowsRoom("anything"));
  Grant literal = GrantFor({"a*b"}, false);
  EXPECT_TRUE(literal.AllowsRoom("a*b"));
  EXPECT_FALSE(literal.AllowsRoom("axb"));
}

TEST(Grant, NoRoomsAllowsNothing) {
  EXPECT_FALSE(GrantFor({}, true).AllowsRoom("team-a"));
}

TEST(Authorize, RefusesOtherRoomsWithPermissionDenied) {
  Grant grant = GrantFor({"team-a", "shared-*"}, true);
  EXPECT_TRUE(Authorize(grant, "team-a", true).ok());
  EXPECT_TRUE(Authorize(grant, "shared-x", false).ok());
  EXPECT_EQ(Authorize(grant, "team-b", false).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(grant, "team-b", true).code(), absl::StatusCode::kPermissionDenied);
}

TEST(Authorize, RefusesWritesWithoutWriteScope) {
  Grant grant = GrantFor({"team-a"}, false);
  EXPECT_TRUE(Authorize(grant, "team-a", false).ok());
  absl::Status write = Authorize(grant, "team-a", true);
  EXPECT_EQ(write.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(write.message().find("write"), absl::string_view::npos);
}

}  // namespace
}  // namespace roomsync

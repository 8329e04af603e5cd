#include "auth/jwt_claims.h"

#include <gtest/gtest.h>

namespace roomsync {
namespace {

TEST(JwtHeader, AcceptsTheThreeAlgorithmsAndKid) {
  absl::StatusOr<JwtHeader> hs = ParseJwtHeader(R"({"alg":"HS256","typ":"JWT"})");
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_EQ(hs->alg, JwsAlgorithm::kHs256);
  EXPECT_EQ(hs->kid, "");
  absl::StatusOr<JwtHeader> es = ParseJwtHeader(R"({"alg":"ES256","kid":"k1"})");
  ASSERT_TRUE(es.ok());
  EXPECT_EQ(es->alg, JwsAlgorithm::kEs256);
  EXPECT_EQ(es->kid, "k1");
  absl::StatusOr<JwtHeader> ed = ParseJwtHeader(R"({"alg":"EdDSA","typ":"at+jwt"})");
  ASSERT_TRUE(ed.ok());
  EXPECT_EQ(ed->alg, JwsAlgorithm::kEdDsa);
}

TEST(JwtHeader, RefusesNoneUnknownAndMiscasedAlgorithms) {
  for (const char* header :
       {R"({"alg":"none"})", R"({"alg":"None"})", R"({"alg":"NONE"})", R"({"alg":"hs256"})",
        R"({"alg":"HS512"})", R"({"alg":"RS256"})", R"({"alg":"PS256"})", R"({"alg":""})",
        R"({"alg":null})", R"({"alg":["HS256"]})", R"({"typ":"JWT"})"}) {
    EXPECT_EQ(ParseJwtHeader(header).status().code(), absl::StatusCode::kInvalidArgument)
        << header;
  }
}

TEST(JwtHeader, RefusesMalformedJsonDuplicatesCritAndOtherTypes) {
  for (const char* header :
       {"", "{", "[]", "\"HS256\"", R"({"alg":"HS256",})", R"({"alg":"HS256","alg":"none"})",
        R"({"alg":"none","alg":"HS256"})", R"({"alg":"HS256","crit":["exp"]})",
        R"({"alg":"HS256","typ":"JWE"})", R"({"alg":"HS256","kid":7})",
        "{\"alg\":\"HS256\",\"kid\":\"\xff\"}"}) {
    EXPECT_EQ(ParseJwtHeader(header).status().code(), absl::StatusCode::kInvalidArgument)
        << header;
  }
}

TEST(JwtClaims, ReadsSubjectRoomsScopeAndTimes) {
  absl::StatusOr<JwtClaims> claims = ParseJwtClaims(
      R"({"sub":"u","exp":1700000000,"nbf":1699999999.5,"rooms":["a","b*"],)"
      R"("scope":"read write","iss":"https://issuer","aud":["x","y"]})");
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "u");
  EXPECT_EQ(claims->expires, absl::FromUnixSeconds(1700000000));
  ASSERT_TRUE(claims->not_before.has_value());
  EXPECT_EQ(*claims->not_before, absl::FromUnixMillis(1699999999500));
  EXPECT_EQ(claims->rooms, (std::vector<std::string>{"a", "b*"}));
  EXPECT_TRUE(claims->can_write);
  EXPECT_EQ(claims->issuer, "https://issuer");
  EXPECT_EQ(claims->audiences, (std::vector<std::string>{"x", "y"}));
}

TEST(JwtClaims, ScopeWithoutWriteIsReadOnlyAndUnknownWordsAreIgnored) {
  auto can_write = [](const char* json) {
    absl::StatusOr<JwtClaims> claims = ParseJwtClaims(json);
    EXPECT_TRUE(claims.ok()) << json;
    return claims.ok() && claims->can_write;
  };
  EXPECT_FALSE(can_write(R"({"sub":"u","exp":1,"scope":"read"})"));
  EXPECT_FALSE(can_write(R"({"sub":"u","exp":1})"));
  EXPECT_FALSE(can_write(R"({"sub":"u","exp":1,"scope":"read writer"})"));
  EXPECT_TRUE(can_write(R"({"sub":"u","exp":1,"scope":"profile  write read"})"));
}

TEST(JwtClaims, AdminScopeIsItsOwnWord) {
  auto admin = [](const char* json) {
    absl::StatusOr<JwtClaims> claims = ParseJwtClaims(json);
    EXPECT_TRUE(claims.ok()) << json;
    return claims.ok() && claims->admin;
  };
  EXPECT_TRUE(admin(R"({"sub":"u","exp":1,"scope":"admin"})"));
  EXPECT_TRUE(admin(R"({"sub":"u","exp":1,"scope":"read admin"})"));
  EXPECT_FALSE(admin(R"({"sub":"u","exp":1,"scope":"read write"})"));
  EXPECT_FALSE(admin(R"({"sub":"u","exp":1,"scope":"administrator"})"));
  EXPECT_FALSE(admin(R"({"sub":"u","exp":1})"));
  // Admin is not write: the public API's rights stay as they were.
  absl::StatusOr<JwtClaims> claims = ParseJwtClaims(R"({"sub":"u","exp":1,"scope":"admin"})");
  ASSERT_TRUE(claims.ok());
  EXPECT_FALSE(claims->can_write);
}

TEST(JwtClaims, AudienceMayBeAString) {
  absl::StatusOr<JwtClaims> claims = ParseJwtClaims(R"({"sub":"u","exp":1,"aud":"x"})");
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->audiences, std::vector<std::string>{"x"});
}

TEST(JwtClaims, RefusesMissingOrMistypedClaims) {
  for (const char* json :
       {R"({"exp":1})", R"({"sub":"","exp":1})", R"({"sub":7,"exp":1})", R"({"sub":"u"})",
        R"({"sub":"u","exp":"1"})", R"({"sub":"u","exp":null})", R"({"sub":"u","exp":1e300})",
        R"({"sub":"u","exp":1,"nbf":"soon"})", R"({"sub":"u","exp":1,"rooms":"a"})",
        R"({"sub":"u","exp":1,"rooms":["a",1]})", R"({"sub":"u","exp":1,"rooms":[""]})",
        R"({"sub":"u","exp":1,"scope":["write"]})", R"({"sub":"u","exp":1,"aud":[1]})",
        R"({"sub":"u","exp":1,"iss":1})", R"({"sub":"u","exp":1,"sub":"admin"})",
        R"([{"sub":"u","exp":1}])", "not json"}) {
    EXPECT_EQ(ParseJwtClaims(json).status().code(), absl::StatusCode::kInvalidArgument) << json;
  }
}

}  // namespace
}  // namespace roomsync

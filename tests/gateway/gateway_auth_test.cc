// Bearer-token auth on the HTTP API end to end (PROTOCOL.md "Authentication
// and errors"): a real node with --auth jwt (HS256 secret file), real
// sockets, tokens signed in the test.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/auth/test_token_signer.h"
#include "tests/gateway/gateway_test_node.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-test-secret";

std::string Token(std::string_view rooms_json, std::string_view scope,
                  absl::Duration lifetime = absl::Hours(1), std::string_view secret = kSecret) {
  return SignHs256(secret, Header("HS256"), Claims(absl::Now() + lifetime, rooms_json, scope));
}

std::string Doc(const std::string& id) {
  return absl::StrCat(R"([{"id":")", id, R"(","timestamp":)", NowMs(), R"(,"ciphertext":"c"}])");
}

using Headers = std::vector<std::pair<std::string, std::string>>;
Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

class GatewayAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string secret_file = scratch_.Write("hs256.secret", kSecret);
    node_ = StartTestNode([&](NodeConfig& config) {
      JwtConfig jwt;
      jwt.hs256_secret_file = secret_file;
      jwt.leeway = absl::ZeroDuration();
      config.gateway.jwt = jwt;
      config.room.jwt = jwt;
      config.gateway.keepalive_interval = absl::Milliseconds(100);
    });
  }
  int port() const { return node_->http_port(); }
  HttpResponse Push(const std::string& room, const Headers& headers, const std::string& query = "") {
    return Http(port(), "POST",
                absl::StrCat("/v1/rooms/", room, "/replicate/push?collection=messages", query),
                Doc("d"), headers);
  }
  HttpResponse Pull(const std::string& room, const Headers& headers, const std::string& query = "") {
    return Http(port(), "GET", absl::StrCat("/v1/rooms/", room, "/replicate/pull", query), "",
                headers);
  }

  ScratchDir scratch_;
  std::unique_ptr<Node> node_;
};

TEST_F(GatewayAuthTest, MissingTokenIs401WithBearerChallenge) {
  for (const HttpResponse& response :
       {Pull("room-a", {}), Push("room-a", {}),
        Http(port(), "GET", "/v1/rooms/room-a/history"),
        Http(port(), "GET", "/api/room/room-a/replicate/pull/stream")}) {
    EXPECT_EQ(response.status, 401) << response.body;
    EXPECT_EQ(ErrorCode(response.body), "unauthenticated");
    EXPECT_EQ(response.Header("www-authenticate"), R"(Bearer realm="roomsync")");
  }
}

TEST_F(GatewayAuthTest, BadTokensAre401) {
  std::string wrong_secret = Token(R"(["room-a"])", "read write", absl::Hours(1),
                                   "another-secret-another-secret-another");
  std::string expired = Token(R"(["room-a"])", "read write", -absl::Minutes(1));
  std::string unsigned_token = absl::StrCat(SigningInput(R"({"alg":"none"})",
                                                         Claims(absl::Now() + absl::Hours(1))),
                                            ".");
  for (const std::string& token : {wrong_secret, expired, unsigned_token, std::string("x.y.z")}) {
    HttpResponse response = Pull("room-a", Bearer(token));
    EXPECT_EQ(response.status, 401) << response.body;
    EXPECT_EQ(ErrorCode(response.body), "unauthenticated");
  }
  HttpResponse basic = Pull("room-a", {{"Authorization", "Basic dXNlcjpwdw=="}});
  EXPECT_EQ(basic.status, 401);
}

TEST_F(GatewayAuthTest, GrantedRoomAndScopeAreEnforced) {
  std::string writer = Token(R"(["room-a", "team-*"])", "read write");
  std::string reader = Token(R"(["room-a"])", "read");
  EXPECT_EQ(Push("room-a", Bearer(writer)).status, 200);
  EXPECT_EQ(Push("team-blue", Bearer(writer)).status, 200);  // prefix grant
  EXPECT_EQ(Pull("room-a", Bearer(reader)).status, 200);

  HttpResponse read_only_push = Push("room-a", Bearer(reader));
  EXPECT_EQ(read_only_push.status, 403);
  EXPECT_EQ(ErrorCode(read_only_push.body), "permission_denied");
  HttpResponse other_room = Pull("room-b", Bearer(writer));
  EXPECT_EQ(other_room.status, 403);
  EXPECT_EQ(ErrorCode(other_room.body), "permission_denied");
  EXPECT_EQ(Http(port(), "GET", "/v1/rooms/room-b/history", "", Bearer(reader)).status, 403);
}

TEST_F(GatewayAuthTest, AccessTokenQueryOnlyOnGet) {
  std::string writer = Token(R"(["room-a"])", "read write");
  EXPECT_EQ(Pull("room-a", {}, "?access_token=" + writer).status, 200);
  HttpResponse post = Push("room-a", {}, "&access_token=" + writer);
  EXPECT_EQ(post.status, 401) << post.body;
  // Two credentials in one request are refused (RFC 6750 §2).
  EXPECT_EQ(Pull("room-a", Bearer(writer), "?access_token=" + writer).status, 401);
}

TEST_F(GatewayAuthTest, HealthMetricsAndPreflightNeedNoToken) {
  EXPECT_EQ(Http(port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(Http(port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(Http(port(), "GET", "/metrics").status, 200);
  HttpResponse preflight = Http(port(), "OPTIONS", "/v1/rooms/room-a/replicate/push", "",
                                {{"Origin", "https://app.example"},
                                 {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 204);
}

TEST_F(GatewayAuthTest, StreamWithQueryTokenEndsWhenTheTokenExpires) {
  std::string writer = Token(R"(["room-a"])", "read write");
  std::string short_lived = Token(R"(["room-a"])", "read", absl::Seconds(2));
  TestConnection stream(port());
  stream.Send(RequestText("GET", "/v1/rooms/room-a/replicate/pull/stream?access_token=" + short_lived,
                          ""));
  ASSERT_EQ(stream.ReadStreamHead().status, 200);
  ASSERT_EQ(Push("room-a", Bearer(writer)).status, 200);
  // Live data flows while the token is valid...
  EXPECT_TRUE(stream.ReadUntil("\"documents\"", absl::Seconds(5)));
  // ...and the keep-alive ticker closes the stream once it expired ("exp"
  // has whole seconds: at most 2 s, plus a tick).
  EXPECT_TRUE(stream.WaitForClose(absl::Seconds(5)));
}

TEST_F(GatewayAuthTest, StreamOfAnotherRoomIs403) {
  std::string reader = Token(R"(["room-a"])", "read");
  HttpResponse response =
      Http(port(), "GET", "/v1/rooms/room-b/replicate/pull/stream?access_token=" + reader);
  EXPECT_EQ(response.status, 403);
}

TEST(GatewayAuthConfig, JwtWithoutKeysIsAStartupError) {
  NodeConfig config;
  config.room.store_url = TempSqliteUrl();
  config.room.grpc_address = "";
  config.gateway.http_address = "127.0.0.1:0";
  config.gateway.jwt = JwtConfig();  // no secret, no JWKS
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(config);
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("--jwt_hs256_secret_file"), absl::string_view::npos)
      << node.status();
}

}  // namespace
}  // namespace roomsync::testing

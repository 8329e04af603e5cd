// The room service with auth and TLS (services/room/room_auth.h): mTLS with
// certificates made by the openssl CLI in the test, per-call token checks,
// the mTLS exemption for a token-less Subscribe, and a gateway in front of
// it over mTLS, forwarding its clients' tokens.
#include <gtest/gtest.h>

#include <cstdlib>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/gateway.h"
#include "gateway/room_service_channel.h"
#include "tests/auth/test_token_signer.h"
#include "tests/gateway/http_test_client.h"
#include "tests/room/room_client.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

constexpr char kSecret[] = "room-auth-test-secret-room-auth-test-secret";

// A CA, a server certificate for 127.0.0.1 and a client certificate, all
// P-256, in `dir` (ca.pem, server.pem/.key, client.pem/.key).
void MakeCertificates(const std::string& dir) {
  std::string script = absl::StrCat(
      "set -e; cd '", dir, "'; exec 2>openssl.log\n",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=roomsync-test-ca -keyout ca.key -out ca.pem\n",
      "for name in server client; do\n"
      "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-subj /CN=roomsync-$name -keyout $name.key -out $name.csr\n"
      "done\n",
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
      ">server.ext\n",
      "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n",
      "for name in server client; do\n"
      "  openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
      "-extfile $name.ext -out $name.pem\n"
      "done\n");
  ASSERT_EQ(std::system(script.c_str()), 0)
      << "openssl failed; see " << dir << "/openssl.log";
}

std::string Token(std::string_view rooms_json, std::string_view scope) {
  return SignHs256(kSecret, Header("HS256"),
                   Claims(absl::Now() + absl::Hours(1), rooms_json, scope));
}

class RoomAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCertificates(certs_.path());
    jwt_.hs256_secret_file = scratch_.Write("hs256.secret", kSecret);
  }
  std::string Cert(const std::string& name) const { return certs_.path() + "/" + name; }

  std::unique_ptr<RoomServer> StartServer(bool require_client_certificate, bool tls = true) {
    RoomServerConfig config;
    config.store_url = TempSqliteUrl();
    config.grpc_address = "127.0.0.1:0";
    config.jwt = jwt_;
    if (tls) {
      config.tls.cert_file = Cert("server.pem");
      config.tls.key_file = Cert("server.key");
      if (require_client_certificate) config.tls.ca_file = Cert("ca.pem");
    }
    config.allow_plaintext = !tls;
    absl::StatusOr<std::unique_ptr<RoomServer>> server = RoomServer::Start(config);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  std::shared_ptr<grpc::Channel> Channel(int port, bool with_client_certificate) {
    RoomServiceChannelConfig config;
    config.address = absl::StrCat("127.0.0.1:", port);
    config.ca_file = Cert("ca.pem");
    if (with_client_certificate) {
      config.cert_file = Cert("client.pem");
      config.key_file = Cert("client.key");
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenRoomServiceChannel(config);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }

  static grpc::Status PullWith(std::shared_ptr<grpc::Channel> channel, const std::string& room,
                               const std::string& token) {
    auto stub = v1::RoomSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::PullRequest request;
    request.set_room(room);
    v1::PullResponse response;
    return stub->Pull(&context, request, &response);
  }

  static grpc::Status PushWith(std::shared_ptr<grpc::Channel> channel, const std::string& room,
                               const std::string& token) {
    auto stub = v1::RoomSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::PushRequest request;
    request.set_room(room);
    request.set_collection("messages");
    request.add_items()->set_new_document_state(DocJson("d1", NowMs(), "c"));
    v1::PushResponse response;
    return stub->Push(&context, request, &response);
  }

  // PutSnapshot of `room` at seq 1 of its epoch (read by a pull first).
  static grpc::Status PutSnapshotWith(std::shared_ptr<grpc::Channel> channel,
                                      const std::string& room, const std::string& epoch,
                                      const std::string& token) {
    auto stub = v1::RoomSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::PutSnapshotRequest request;
    request.set_room(room);
    request.mutable_checkpoint()->set_seq(1);
    request.mutable_checkpoint()->set_epoch(epoch);
    request.set_snapshot("sealed bytes");
    v1::PutSnapshotResponse response;
    return stub->PutSnapshot(&context, request, &response);
  }

  static grpc::Status GetSnapshotWith(std::shared_ptr<grpc::Channel> channel,
                                      const std::string& room, const std::string& token) {
    auto stub = v1::RoomSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::GetSnapshotRequest request;
    request.set_room(room);
    v1::GetSnapshotResponse response;
    return stub->GetSnapshot(&context, request, &response);
  }

  // The first event of a token-less Subscribe, or the call's error.
  static grpc::Status SubscribeWithoutToken(std::shared_ptr<grpc::Channel> channel) {
    auto stub = v1::RoomSync::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::SubscribeRequest request;
    request.set_room("room-a");
    auto reader = stub->Subscribe(&context, request);
    v1::SubscribeEvent event;
    if (reader->Read(&event)) {
      EXPECT_TRUE(event.has_live());
      context.TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  TempDir certs_{"roomsync-certs"};
  ScratchDir scratch_;
  JwtConfig jwt_;
};

TEST_F(RoomAuthTest, MutualTlsClientWithATokenIsServedAndGrantsAreEnforced) {
  auto server = StartServer(/*require_client_certificate=*/true);
  ASSERT_NE(server, nullptr);
  auto channel = Channel(server->grpc_port(), /*with_client_certificate=*/true);
  std::string writer = Token(R"(["room-a"])", "read write");
  std::string reader = Token(R"(["room-a"])", "read");
  EXPECT_TRUE(PushWith(channel, "room-a", writer).ok());
  EXPECT_TRUE(PullWith(channel, "room-a", reader).ok());
  EXPECT_EQ(PushWith(channel, "room-a", reader).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(PullWith(channel, "room-b", writer).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The certificate alone does not authorize unary calls.
  EXPECT_EQ(PullWith(channel, "room-a", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(PullWith(channel, "room-a", "not.a.token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // ...but it does a token-less Subscribe: the gateway's shared stream.
  EXPECT_TRUE(SubscribeWithoutToken(channel).ok());
}

TEST_F(RoomAuthTest, SnapshotsNeedWriteToStoreAndReadToFetch) {
  auto server = StartServer(/*require_client_certificate=*/true);
  ASSERT_NE(server, nullptr);
  auto channel = Channel(server->grpc_port(), /*with_client_certificate=*/true);
  std::string writer = Token(R"(["room-a"])", "read write");
  std::string reader = Token(R"(["room-a"])", "read");
  ASSERT_TRUE(PushWith(channel, "room-a", writer).ok());
  auto stub = v1::RoomSync::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + reader);
  v1::PullRequest pull;
  pull.set_room("room-a");
  v1::PullResponse pulled;
  ASSERT_TRUE(stub->Pull(&context, pull, &pulled).ok());
  const std::string epoch = pulled.checkpoint().epoch();
  EXPECT_EQ(PutSnapshotWith(channel, "room-a", epoch, reader).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(PutSnapshotWith(channel, "room-a", epoch, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetSnapshotWith(channel, "room-a", reader).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(PutSnapshotWith(channel, "room-a", epoch, writer).ok());
  EXPECT_TRUE(GetSnapshotWith(channel, "room-a", reader).ok());
  EXPECT_EQ(GetSnapshotWith(channel, "room-b", writer).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(GetSnapshotWith(channel, "room-a", "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(RoomAuthTest, ClientWithoutACertificateIsRefused) {
  auto server = StartServer(/*require_client_certificate=*/true);
  ASSERT_NE(server, nullptr);
  grpc::Status status = PullWith(Channel(server->grpc_port(), /*with_client_certificate=*/false),
                                 "room-a", Token(R"(["room-a"])", "read"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  auto plaintext = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->grpc_port()),
                                       grpc::InsecureChannelCredentials());
  EXPECT_FALSE(PullWith(plaintext, "room-a", Token(R"(["room-a"])", "read")).ok());
}

TEST_F(RoomAuthTest, WithoutClientCertificatesSubscribeNeedsAToken) {
  auto server = StartServer(/*require_client_certificate=*/false);
  ASSERT_NE(server, nullptr);
  auto channel = Channel(server->grpc_port(), /*with_client_certificate=*/false);
  EXPECT_TRUE(PullWith(channel, "room-a", Token(R"(["room-a"])", "read")).ok());
  EXPECT_EQ(SubscribeWithoutToken(channel).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(RoomAuthTest, PlaintextListenerNeedsExplicitPermission) {
  RoomServerConfig config;
  config.store_url = TempSqliteUrl();
  config.grpc_address = "127.0.0.1:0";
  config.allow_plaintext = false;
  absl::StatusOr<std::unique_ptr<RoomServer>> server = RoomServer::Start(config);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("--grpc_plaintext"), absl::string_view::npos);
}

TEST_F(RoomAuthTest, InProcessChannelIsTrustedWithoutToken) {
  auto server = StartServer(/*require_client_certificate=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(PullWith(server->InProcessChannel(), "room-a", "").ok());
}

// A push and a live stream through a gateway in front of `server`.
void ExpectGatewayServes(std::shared_ptr<grpc::Channel> channel,
                         GatewayConfig config) {
  config.http_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Start(config, channel);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  int port = (*gateway)->http_port();
  std::string writer = Token(R"(["room-a"])", "read write");

  TestConnection stream(port);
  stream.Send(RequestText("GET", "/v1/rooms/room-a/replicate/pull/stream?access_token=" + writer,
                          ""));
  ASSERT_EQ(stream.ReadStreamHead().status, 200);
  HttpResponse pushed =
      Http(port, "POST", "/v1/rooms/room-a/replicate/push?collection=messages",
           absl::StrCat("[", DocJson("m1", NowMs(), "secret-ciphertext"), "]"),
           {{"Authorization", "Bearer " + writer}});
  EXPECT_EQ(pushed.status, 200) << pushed.body;
  EXPECT_TRUE(stream.ReadUntil("\"m1\"", absl::Seconds(10)));
  (*gateway)->Drain(absl::Seconds(1));
}

TEST_F(RoomAuthTest, GatewayOverMutualTlsForwardsClientTokens) {
  auto server = StartServer(/*require_client_certificate=*/true);
  ASSERT_NE(server, nullptr);
  GatewayConfig config;
  config.jwt = jwt_;
  ExpectGatewayServes(Channel(server->grpc_port(), /*with_client_certificate=*/true),
                      config);
}

TEST_F(RoomAuthTest, GatewayWithoutCertificateUsesItsUpstreamToken) {
  auto server = StartServer(/*require_client_certificate=*/false);
  ASSERT_NE(server, nullptr);
  GatewayConfig config;
  config.jwt = jwt_;
  config.upstream_token_file = scratch_.Write("gateway.token", Token(R"(["*"])", "read") + "\n");
  ExpectGatewayServes(Channel(server->grpc_port(), /*with_client_certificate=*/false),
                      config);
}

}  // namespace
}  // namespace roomsync::testing

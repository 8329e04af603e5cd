// HTTPS on the gateway: a self-signed certificate made by the openssl CLI,
// requests over TLS, TLS 1.1 and plain HTTP refused, and the certificate
// reloaded when its files change.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <fstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/gateway/gateway_test_node.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;

// A self-signed P-256 certificate for 127.0.0.1 with common name `cn`,
// written atomically (temp files + mv) as an operator renewing it would.
void MakeCertificate(const std::string& dir, const std::string& cn) {
  std::string script = absl::StrCat(
      "set -e; cd '", dir, "'; exec 2>>openssl.log\n",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=", cn, " -addext subjectAltName=IP:127.0.0.1 -keyout key.tmp -out cert.tmp\n",
      "mv key.tmp key.pem; mv cert.tmp cert.pem\n");
  ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed; see " << dir << "/openssl.log";
}

struct HttpsResult {
  bool handshake_ok = false;
  int status = 0;
  std::string body;
  std::string peer_common_name;
};

HttpsResult HttpsGet(int port, const std::string& ca_file, const std::string& target,
                     int max_tls_version = 0) {
  HttpsResult result;
  net::io_context io;
  ssl::context context(ssl::context::tls_client);
  context.load_verify_file(ca_file);
  context.set_verify_mode(ssl::verify_peer);
  if (max_tls_version != 0) {
    SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(context.native_handle(), max_tls_version);
    // OpenSSL 3's default security level forbids TLS < 1.2 client-side.
    SSL_CTX_set_security_level(context.native_handle(), 0);
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  beast::error_code error;
  stream.next_layer().socket().connect(
      net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      error);
  if (error) return result;
  stream.handshake(ssl::stream_base::client, error);
  if (error) return result;
  result.handshake_ok = true;
  if (X509* certificate = SSL_get1_peer_certificate(stream.native_handle())) {
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name,
                              sizeof name);
    result.peer_common_name = name;
    X509_free(certificate);
  }
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(false);
  http::write(stream, request, error);
  if (error) return result;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, error);
  if (error && error != http::error::end_of_stream) return result;
  result.status = response.result_int();
  result.body = response.body();
  return result;
}

class GatewayTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCertificate(certs_.path(), "roomsync-first");
    node_ = StartTestNode([&](NodeConfig& config) {
      config.gateway.tls.cert_file = Cert();
      config.gateway.tls.key_file = certs_.path() + "/key.pem";
    });
  }
  std::string Cert() const { return certs_.path() + "/cert.pem"; }

  TempDir certs_{"roomsync-tls"};
  std::unique_ptr<Node> node_;
};

TEST_F(GatewayTlsTest, ServesTheApiOverTls) {
  HttpsResult health = HttpsGet(node_->http_port(), Cert(), "/healthz");
  ASSERT_TRUE(health.handshake_ok);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.peer_common_name, "roomsync-first");
  HttpsResult pull = HttpsGet(node_->http_port(), Cert(), "/v1/rooms/r/replicate/pull");
  EXPECT_EQ(pull.status, 200) << pull.body;
}

TEST_F(GatewayTlsTest, RefusesTls11AndPlainHttp) {
  EXPECT_FALSE(HttpsGet(node_->http_port(), Cert(), "/healthz", TLS1_1_VERSION).handshake_ok);
  HttpResponse plain = Http(node_->http_port(), "GET", "/healthz");
  EXPECT_EQ(plain.status, 0) << "no HTTP answer on the HTTPS port";
}

TEST_F(GatewayTlsTest, PicksUpARenewedCertificate) {
  ASSERT_EQ(HttpsGet(node_->http_port(), Cert(), "/healthz").peer_common_name, "roomsync-first");
  absl::SleepFor(absl::Milliseconds(1100));  // files are checked at most once a second
  MakeCertificate(certs_.path(), "roomsync-renewed");
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string name;
  while (name != "roomsync-renewed" && absl::Now() < deadline) {
    name = HttpsGet(node_->http_port(), Cert(), "/healthz").peer_common_name;
    if (name != "roomsync-renewed") absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(name, "roomsync-renewed");
}

TEST(GatewayTlsWebRoot, ServesStaticFilesOverTls) {
  TempDir certs("roomsync-tls");
  TempDir web("roomsync-web");
  MakeCertificate(certs.path(), "roomsync-web");
  {
    std::ofstream index(web.path() + "/index.html");
    index << "<!doctype html><title>over tls</title>";
  }
  std::unique_ptr<Node> node = StartTestNode([&](NodeConfig& config) {
    config.gateway.tls.cert_file = certs.path() + "/cert.pem";
    config.gateway.tls.key_file = certs.path() + "/key.pem";
    config.gateway.web_root = web.path();
  });
  HttpsResult index = HttpsGet(node->http_port(), certs.path() + "/cert.pem", "/");
  ASSERT_TRUE(index.handshake_ok);
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html><title>over tls</title>");
  EXPECT_EQ(HttpsGet(node->http_port(), certs.path() + "/cert.pem", "/nope.js").status, 404);
  EXPECT_EQ(HttpsGet(node->http_port(), certs.path() + "/cert.pem", "/healthz").status, 200);
}

TEST(GatewayTlsConfig, UnreadableCertificateIsAStartupError) {
  NodeConfig config;
  config.room.store_url = TempSqliteUrl();
  config.room.grpc_address = "";
  config.gateway.http_address = "127.0.0.1:0";
  config.gateway.tls.cert_file = "/nonexistent/cert.pem";
  config.gateway.tls.key_file = "/nonexistent/key.pem";
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(config);
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("--tls_cert_file"), absl::string_view::npos);
}

}  // namespace
}  // namespace roomsync::testing

// The operators' HTTP server over real loopback sockets: routes, status
// codes, HEAD, keep-alive, and the bounds it promises (request head size,
// connections).
#include "ops/ops_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace roomsync {
namespace {

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

void Send(int fd, const std::string& bytes) {
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

// Reads until `done(received)` or the peer closes or 5 s pass.
std::string ReadUntil(int fd, bool (*done)(const std::string&)) {
  std::string received;
  char buffer[4096];
  while (!done(received)) {
    pollfd ready{fd, POLLIN, 0};
    if (poll(&ready, 1, 5000) <= 0) break;
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    received.append(buffer, n);
  }
  return received;
}

bool Never(const std::string&) { return false; }

// One whole response with a Content-Length body.
bool OneResponse(const std::string& r) {
  size_t head = r.find("\r\n\r\n");
  if (head == std::string::npos) return false;
  size_t length = r.find("Content-Length: ");
  if (length == std::string::npos || length > head) return true;
  return r.size() >= head + 4 + std::stoul(r.substr(length + 16));
}

class OpsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    counter_ = &prometheus::BuildCounter().Name("test_calls_total").Help("calls")
                    .Register(*registry_).Add({});
    counter_->Increment(3);
    OpsRoutes routes;
    routes["/metrics"] = [this] { return MetricsResponse(*registry_); };
    routes["/readyz"] = [] {
      OpsResponse response;
      response.status = 503;
      response.content_type = "application/json";
      response.body = R"({"status":"not_ready"})";
      return response;
    };
    absl::StatusOr<std::unique_ptr<OpsHttpServer>> server =
        OpsHttpServer::Start("127.0.0.1:0", std::move(routes));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::string Exchange(const std::string& request) {
    int fd = Connect(server_->port());
    Send(fd, request);
    std::string response = ReadUntil(fd, &Never);
    close(fd);
    return response;
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Counter* counter_ = nullptr;
  std::unique_ptr<OpsHttpServer> server_;
};

TEST_F(OpsHttpServerTest, ServesRoutesWithTheirStatus) {
  std::string metrics = Exchange("GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200", 0), 0u) << metrics;
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("test_calls_total 3"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("Cache-Control: no-store"), std::string::npos);

  std::string ready = Exchange("GET /readyz?verbose=1 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ready.rfind("HTTP/1.1 503", 0), 0u) << ready;
  EXPECT_NE(ready.find(R"({"status":"not_ready"})"), std::string::npos);

  EXPECT_EQ(Exchange("GET /nope HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Exchange("POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405", 0),
            0u);
}

TEST_F(OpsHttpServerTest, HeadHasTheLengthButNoBody) {
  std::string head = Exchange("HEAD /readyz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 503", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 22"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
}

TEST_F(OpsHttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  int fd = Connect(server_->port());
  for (int i = 0; i < 3; ++i) {
    Send(fd, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string response = ReadUntil(fd, &OneResponse);
    EXPECT_EQ(response.rfind("HTTP/1.1 503", 0), 0u) << "request " << i << ": " << response;
  }
  close(fd);
}

TEST_F(OpsHttpServerTest, AnOversizedRequestHeadIs431) {
  std::string request = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a') + "\r\n\r\n";
  std::string response = Exchange(request);
  EXPECT_EQ(response.rfind("HTTP/1.1 431", 0), 0u) << response.substr(0, 200);
}

TEST_F(OpsHttpServerTest, ConnectionsOverTheBoundAreClosedAndTheServerStillAnswers) {
  std::vector<int> idle;
  for (int i = 0; i < OpsHttpServer::kMaxConnections; ++i) idle.push_back(Connect(server_->port()));
  // Give the server a moment to accept them all.
  usleep(200 * 1000);
  int extra = Connect(server_->port());
  Send(extra, "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ReadUntil(extra, &Never), "") << "the connection over the bound is closed unanswered";
  close(extra);
  for (int fd : idle) close(fd);
  usleep(200 * 1000);
  EXPECT_EQ(Exchange("GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u)
      << "once they are gone, it answers again";
}

TEST(OpsHttpServer, RefusesABadAddress) {
  absl::StatusOr<std::unique_ptr<OpsHttpServer>> server =
      OpsHttpServer::Start("not-an-address", OpsRoutes{});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace roomsync

// Health that tells the truth, on the real roomsync-room binary: /healthz
// says the process answers, /readyz and gRPC health say whether it can
// serve. A PostgreSQL behind a TCP proxy is cut (connections closed,
// refused), frozen (connections held, no bytes: a hung server) and
// restored; the node must turn NOT_SERVING / 503 within its health
// deadline and come back by itself. A drain (RoomAdmin.DrainNode) is
// final: NOT_SERVING until the process ends, whatever the store says.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tests/room/room_client.h"
#include "tests/room/room_process.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

int ListenOn(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    throw std::runtime_error("proxy cannot listen on port " + std::to_string(port) + ": " + why);
  }
  return fd;
}

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A TCP proxy on 127.0.0.1 that a test can cut, freeze and restore.
class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ListenOn(0);
    sockaddr_in addr{};
    socklen_t size = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &size);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TcpProxy() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (std::thread& pipe : pipes_) pipe.join();
    close(listen_fd_);
  }

  int port() const { return port_; }

  // Closes every connection and closes new ones at once, as a server that
  // went away. (The listener stays: its port could not be bound again
  // while the closed connections linger in FIN_WAIT.)
  void Cut() {
    cut_ = true;
    ++generation_;
  }
  void Restore() {
    frozen_ = false;
    cut_ = false;
  }
  // Frozen: connections stay open and new ones are accepted, but no byte
  // passes either way (a stopped server, a black-holed network).
  void Freeze(bool frozen) { frozen_ = frozen; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd ready{listen_fd_, POLLIN, 0};
      if (poll(&ready, 1, 50) <= 0) continue;
      int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      int upstream = cut_ ? -1 : ConnectTo(upstream_port_);
      if (upstream < 0) {
        close(client);
        continue;
      }
      std::lock_guard lock(mu_);
      pipes_.emplace_back([this, client, upstream, generation = generation_.load()] {
        Pipe(client, upstream, generation);
      });
    }
  }

  void Pipe(int a, int b, int generation) {
    char buffer[16384];
    while (!stop_ && generation_ == generation) {
      if (frozen_) {
        std::this_thread::sleep_for(milliseconds(20));
        continue;
      }
      pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(fds, 2, 50) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
        if (n <= 0 || write(fds[1 - i].fd, buffer, n) != n) closed = true;
      }
      if (closed) break;
    }
    close(a);
    close(b);
  }

  const int upstream_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::mutex mu_;
  std::vector<std::thread> pipes_;
  std::atomic<int> generation_{0};
  std::atomic<bool> frozen_{false};
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
};

// grpc.health.v1.Health/Check of the whole server, hand-encoded as the
// gateway does it (Debian ships no C++ for the health proto).
std::string GrpcHealth(int port) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(2));
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&done](grpc::Status status) { done.set_value(status); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) return "error: " + status.error_message();
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (bytes == std::string("\x08\x01", 2)) return "SERVING";
  if (bytes == std::string("\x08\x02", 2)) return "NOT_SERVING";
  return "unknown";
}

// Polls `probe` until it returns `want` or `timeout` passes; the last value.
std::string WaitFor(const std::function<std::string()>& probe, const std::string& want,
                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string seen = probe();
  while (seen != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
    seen = probe();
  }
  return seen;
}

std::string ReadyzStatus(int port) { return std::to_string(HttpGetStatus(port, "/readyz")); }

int PortOf(const std::string& url) {
  std::smatch match;
  if (!std::regex_search(url, match, std::regex(R"(:(\d+)/)"))) {
    throw std::runtime_error("no port in " + url);
  }
  return std::stoi(match[1]);
}

std::string WithPort(const std::string& url, int port) {
  return std::regex_replace(url, std::regex(R"(:\d+/)"), ":" + std::to_string(port) + "/");
}

class RoomHealth : public ::testing::Test {
 protected:
  std::unique_ptr<RoomProcess> Start(std::vector<std::string> args) {
    return std::make_unique<RoomProcess>(ROOMSYNC_ROOM_BINARY, args,
                                         dir_.path() + "/room-" + std::to_string(++starts_) +
                                             ".log");
  }
  TempDir dir_;
  int starts_ = 0;
};

// Health period 1 s and deadline 2 s (the defaults): a verdict must change
// well within this.
constexpr milliseconds kVerdictWithin{8000};

TEST_F(RoomHealth, PostgresCutFrozenAndRestored) {
  const std::string database = CreateTestDatabase();
  TcpProxy proxy(PortOf(database));
  auto room = Start({"--store=" + WithPort(database, proxy.port())});
  const int ops = room->metrics_port();
  auto health = [&] { return GrpcHealth(room->grpc_port()); };
  auto ready = [&] { return ReadyzStatus(ops); };

  std::string body;
  EXPECT_EQ(HttpGetStatus(ops, "/healthz", &body), 200);
  EXPECT_EQ(body, R"({"status":"alive"})");
  EXPECT_EQ(WaitFor(ready, "200", kVerdictWithin), "200");
  EXPECT_EQ(health(), "SERVING");

  proxy.Cut();
  EXPECT_EQ(WaitFor(health, "NOT_SERVING", kVerdictWithin), "NOT_SERVING");
  EXPECT_EQ(HttpGetStatus(ops, "/readyz", &body), 503);
  EXPECT_NE(body.find(R"("problem":"store: )"), std::string::npos) << body;
  EXPECT_EQ(HttpGetStatus(ops, "/healthz"), 200) << "the process itself is alive";
  // A room opened while the store is cut fails, and the failure is counted.
  {
    auto cut_client = RoomClient::Connect(room->grpc_port());
    PushResult refused = cut_client->Push("cut-room", "messages", {DocJson("a", NowMs(), "x")});
    EXPECT_FALSE(refused.status.ok());
    std::string metrics;
    EXPECT_EQ(HttpGetStatus(ops, "/metrics", &metrics), 200);
    EXPECT_NE(metrics.find(R"(roomsync_store_errors_total{op="open_room"} )"), std::string::npos);
    EXPECT_EQ(metrics.find(R"(roomsync_store_errors_total{op="open_room"} 0)"), std::string::npos)
        << "the failed open is counted";
  }

  proxy.Restore();
  EXPECT_EQ(WaitFor(health, "SERVING", kVerdictWithin), "SERVING") << room->Log();
  EXPECT_EQ(WaitFor(ready, "200", kVerdictWithin), "200");
  // And it serves: a push commits through the restored store.
  auto client = RoomClient::Connect(room->grpc_port());
  PushResult pushed = client->Push("health-room", "messages", {DocJson("a", NowMs(), "x")});
  EXPECT_TRUE(pushed.status.ok()) << pushed.status.error_message();

  proxy.Freeze(true);
  EXPECT_EQ(WaitFor(health, "NOT_SERVING", kVerdictWithin), "NOT_SERVING")
      << "a hung store must count as unreachable after the deadline";
  EXPECT_EQ(HttpGetStatus(ops, "/readyz", &body), 503);
  EXPECT_NE(body.find("did not answer within"), std::string::npos) << body;

  proxy.Freeze(false);
  EXPECT_EQ(WaitFor(health, "SERVING", kVerdictWithin), "SERVING") << room->Log();
  EXPECT_EQ(WaitFor(ready, "200", kVerdictWithin), "200");
}

TEST_F(RoomHealth, SqliteNodeIsReadyAndServesMetricsOnItsPort) {
  auto room = Start({"--store=sqlite:" + dir_.path() + "/room.db"});
  const int ops = room->metrics_port();
  std::string body;
  EXPECT_EQ(WaitFor([&] { return ReadyzStatus(ops); }, "200", kVerdictWithin), "200");
  EXPECT_EQ(HttpGetStatus(ops, "/readyz", &body), 200);
  EXPECT_EQ(body, R"({"status":"ready"})") << "no shard count without shard leases";
  EXPECT_EQ(GrpcHealth(room->grpc_port()), "SERVING");
  EXPECT_EQ(HttpGetStatus(ops, "/metrics", &body), 200);
  EXPECT_NE(body.find("roomsync_"), std::string::npos);
  EXPECT_EQ(HttpGetStatus(ops, "/nothing-here"), 404);
}

}  // namespace
}  // namespace roomsync::testing

// A gateway in front of two room nodes, each on its OWN SQLite store, so a
// call that reached the wrong node would be visible: every room's
// documents must be in the store of the node its shard maps to
// (cluster/shard_map.h) and in no other, for pushes, pulls, history,
// the shared live Subscribe and a stream's catch-up. The PostgreSQL
// version with real processes is tests/e2e/room_nodes.test.mjs.
#include <gtest/gtest.h>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "cluster/shard_map.h"
#include "gateway/gateway.h"
#include "gateway/room_node_set.h"
#include "gateway/shard_owners.h"
#include "roomsync/v1/roomsync.grpc.pb.h"
#include "services/room/room_server.h"
#include "tests/gateway/gateway_test_node.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

constexpr int kNodes = 2;

std::string Doc(const std::string& id) {
  return absl::StrCat(R"({"id":")", id, R"(","timestamp":1,"ciphertext":"x"})");
}

class GatewayRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<RoomNodeChannel> channels;
    std::vector<std::string> addresses;
    for (int i = 0; i < kNodes; ++i) {
      RoomServerConfig config;
      config.store_url = TempSqliteUrl();
      config.grpc_address = "";  // in-process only
      absl::StatusOr<std::unique_ptr<RoomServer>> server = RoomServer::Start(config);
      ASSERT_TRUE(server.ok()) << server.status();
      servers_.push_back(*std::move(server));
      addresses.push_back(absl::StrCat("node-", i));
      channels.push_back({addresses.back(), servers_.back()->InProcessChannel()});
    }
    map_ = std::make_unique<StaticShardMap>(addresses);
    GatewayConfig config;
    config.http_address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Start(config, std::move(channels));
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    port_ = gateway_->http_port();
  }

  void TearDown() override {
    if (gateway_) gateway_->Drain(absl::Seconds(1));
    for (auto& server : servers_) server->Drain(absl::Seconds(1));
  }

  // Room names, `per_node` of them on each node.
  std::vector<std::string> Rooms(int per_node) {
    std::vector<std::string> rooms;
    std::vector<int> count(kNodes, 0);
    for (int i = 0; static_cast<int>(rooms.size()) < per_node * kNodes; ++i) {
      std::string room = absl::StrCat("routed-", i);
      size_t node = map_->NodeOf(room);
      if (count[node] < per_node) {
        ++count[node];
        rooms.push_back(room);
      }
    }
    return rooms;
  }

  // The documents of `room` in node `node`'s own store, asked directly.
  int DocumentsOnNode(int node, const std::string& room) {
    auto stub = v1::RoomSync::NewStub(servers_[node]->InProcessChannel());
    grpc::ClientContext context;
    v1::PullRequest request;
    request.set_room(room);
    request.set_batch_size(1000);
    v1::PullResponse response;
    grpc::Status status = stub->Pull(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.documents_size();
  }

  std::vector<std::unique_ptr<RoomServer>> servers_;
  std::unique_ptr<StaticShardMap> map_;
  std::unique_ptr<Gateway> gateway_;
  int port_ = 0;
};

TEST_F(GatewayRoutingTest, ReadinessCountsTheNodes) {
  HttpResponse ready = Http(port_, "GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.body, R"({"status":"ready","room_nodes":2,"room_nodes_serving":2})");
}

TEST_F(GatewayRoutingTest, EachRoomLivesOnlyOnItsShardsNode) {
  for (const std::string& room : Rooms(10)) {
    HttpResponse pushed =
        Http(port_, "POST", absl::StrCat("/v1/rooms/", room, "/replicate/push?collection=m"),
             absl::StrCat("[", Doc(room + "-1"), ",", Doc(room + "-2"), "]"));
    ASSERT_EQ(pushed.status, 200) << pushed.body;
    HttpResponse pulled = Http(port_, "GET", absl::StrCat("/v1/rooms/", room, "/replicate/pull"));
    ASSERT_EQ(pulled.status, 200) << pulled.body;
    EXPECT_EQ(DocumentIds(pulled.body), (std::vector<std::string>{room + "-1", room + "-2"}));
    HttpResponse history = Http(port_, "GET", absl::StrCat("/v1/rooms/", room, "/history"));
    ASSERT_EQ(history.status, 200) << history.body;
    EXPECT_EQ(DocumentIds(history.body), (std::vector<std::string>{room + "-2", room + "-1"}));
    const int owner = static_cast<int>(map_->NodeOf(room));
    EXPECT_EQ(DocumentsOnNode(owner, room), 2) << room;
    EXPECT_EQ(DocumentsOnNode(1 - owner, room), 0) << room << " reached the wrong node";
  }
}

TEST_F(GatewayRoutingTest, StreamsCatchUpAndGoLiveFromTheRoomsNode) {
  for (const std::string& room : Rooms(1)) {
    const std::string base = absl::StrCat("/v1/rooms/", room, "/replicate/");
    ASSERT_EQ(Http(port_, "POST", base + "push?collection=m", absl::StrCat("[", Doc("a"), "]")).status,
              200);
    HttpResponse pulled = Http(port_, "GET", base + "pull");
    ParsedCheckpoint at = CheckpointOf(pulled.body);
    ASSERT_EQ(Http(port_, "POST", base + "push?collection=m", absl::StrCat("[", Doc("b"), "]")).status,
              200);
    // From seq 1: "b" comes from the catch-up Pull, "c" from the live
    // Subscribe; both must reach the room's node (the other has neither).
    TestConnection stream(port_);
    stream.Send(RequestText("GET", base + "pull/stream", "", {{"Last-Event-ID", at.Json()}}));
    ASSERT_EQ(stream.ReadStreamHead().status, 200);
    EXPECT_TRUE(stream.ReadUntil("\"b\"", absl::Seconds(10))) << room;
    ASSERT_EQ(Http(port_, "POST", base + "push?collection=m", absl::StrCat("[", Doc("c"), "]")).status,
              200);
    EXPECT_TRUE(stream.ReadUntil("\"c\"", absl::Seconds(10))) << room;
    EXPECT_EQ(DocumentsOnNode(static_cast<int>(map_->NodeOf(room)), room), 3);
  }
}

// A channel that never connects (nothing listens on port 1): RoomNodeSet
// only stores it.
std::shared_ptr<grpc::Channel> IdleChannel() {
  return grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
}

std::vector<RoomNodeChannel> ConfiguredNodes() {
  return {{"a:7070", IdleChannel()}, {"b:7070", IdleChannel()}};
}

TEST(RoomNodeSet, WithoutDiscoveryOnlyTheConfiguredNodesAreKnown) {
  RoomNodeSet nodes(ConfiguredNodes(), nullptr);
  EXPECT_EQ(nodes.size(), 2);
  EXPECT_EQ(nodes.FindOrAdd("b:7070"), 1);
  EXPECT_EQ(nodes.FindOrAdd("c:7070"), -1);
  EXPECT_EQ(nodes.size(), 2);
  EXPECT_EQ(nodes.at(0).address, "a:7070");
}

TEST(RoomNodeSet, DiscoversEachAddressOnceAndUpToTheBound) {
  std::atomic<int> opened{0};
  RoomNodeSet nodes(ConfiguredNodes(), [&](const std::string&) {
    opened.fetch_add(1);
    return absl::StatusOr<std::shared_ptr<grpc::Channel>>(IdleChannel());
  });
  // Threads learning the same owner at once add it once.
  std::vector<std::thread> threads;
  std::vector<int> indexes(8, -2);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] { indexes[t] = nodes.FindOrAdd("c:7070"); });
  }
  for (std::thread& thread : threads) thread.join();
  for (int index : indexes) EXPECT_EQ(index, 2);
  EXPECT_EQ(opened.load(), 1);
  EXPECT_EQ(nodes.at(2).address, "c:7070");
  EXPECT_NE(nodes.at(2).stub, nullptr);
  EXPECT_EQ(nodes.configured(), 2);
  EXPECT_EQ(nodes.FindOrAdd(""), -1) << "no address, no node";

  for (int i = nodes.size(); i < RoomNodeSet::kMaxNodes; ++i) {
    EXPECT_EQ(nodes.FindOrAdd(absl::StrCat("n", i, ":7070")), i);
  }
  EXPECT_EQ(nodes.FindOrAdd("one-too-many:7070"), -1);
  EXPECT_EQ(nodes.size(), RoomNodeSet::kMaxNodes);
}

TEST(RoomNodeSet, AChannelThatCannotBeOpenedIsNotFollowed) {
  int attempts = 0;
  RoomNodeSet nodes(ConfiguredNodes(), [&](const std::string&) {
    ++attempts;
    return absl::StatusOr<std::shared_ptr<grpc::Channel>>(absl::InvalidArgumentError("no CA"));
  });
  EXPECT_EQ(nodes.FindOrAdd("c:7070"), -1);
  EXPECT_EQ(nodes.FindOrAdd("c:7070"), -1);
  EXPECT_EQ(nodes.size(), 2);
  EXPECT_EQ(attempts, 1) << "an address that failed is not tried at every lease table answer";
}

TEST(ShardOwnerTable, OwnersResolveToNodeIndexesAndAnEmptyAnswerForgetsThem) {
  RoomNodeSet nodes(ConfiguredNodes(), [](const std::string&) {
    return absl::StatusOr<std::shared_ptr<grpc::Channel>>(IdleChannel());
  });
  ShardOwnerTable owners([&](std::string_view address) { return nodes.FindOrAdd(address); });
  EXPECT_EQ(owners.OwnerOf(5), -1);
  EXPECT_TRUE(owners.Learn(5, "b:7070"));
  EXPECT_FALSE(owners.Learn(5, "b:7070")) << "already known";
  EXPECT_EQ(owners.OwnerOf(5), 1);
  v1::ShardOwnersResponse answer;
  v1::ShardOwner* owner = answer.add_owners();
  owner->set_shard(7);
  owner->set_address("d:7070");  // discovered
  owners.Apply(answer);
  EXPECT_EQ(owners.OwnerOf(7), 2);
  EXPECT_EQ(owners.OwnerOf(5), 1) << "a shard missing from the answer keeps its owner";
  owners.Apply(v1::ShardOwnersResponse());
  EXPECT_EQ(owners.OwnerOf(5), -1);
  EXPECT_EQ(owners.OwnerOf(7), -1);
  EXPECT_EQ(owners.OwnerOf(-1), -1);
  EXPECT_EQ(owners.OwnerOf(kShardCount), -1);
}

}  // namespace
}  // namespace roomsync::testing

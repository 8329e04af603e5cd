// Room nodes with shard leases on one PostgreSQL (DESIGN.md, Sharding):
// each room is served by exactly one node, the others answer FAILED_PRECONDITION
// and name the owner; when a node drains, its shards move to the other
// node, its subscribers get Resync, and every acknowledged push is there.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cluster/shard_map.h"
#include "protocol/error_codes.h"
#include "tests/room/room_client.h"
#include "tests/support/pg_harness.h"

namespace roomsync::testing {
namespace {

constexpr int kRooms = 40;

std::unique_ptr<RoomServer> StartLeasingServer(const std::string& url, const std::string& id) {
  RoomServerConfig config;
  config.store_url = url;
  config.grpc_address = "127.0.0.1:0";
  config.leasing.enabled = true;
  config.leasing.node_id = id;
  config.leasing.ttl = absl::Seconds(3);
  config.leasing.round_every = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<RoomServer>> server = RoomServer::Start(config);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

struct Attempt {
  grpc::Status status;
  std::string owner;  // trailing roomsync-owner
};

Attempt PushOne(RoomClient& client, const std::string& room, const std::string& id) {
  v1::PushRequest request;
  request.set_room(room);
  request.set_collection("messages");
  request.add_items()->set_new_document_state(DocJson(id, NowMs(), "hi"));
  v1::PushResponse response;
  grpc::ClientContext context;
  Attempt attempt{client.stub().Push(&context, request, &response), ""};
  auto owner = context.GetServerTrailingMetadata().find(std::string(kOwnerMetadataKey));
  if (owner != context.GetServerTrailingMetadata().end()) {
    attempt.owner = std::string(owner->second.data(), owner->second.size());
  }
  return attempt;
}

std::string RoomName(int i) { return "lease-room-" + std::to_string(i); }

TEST(RoomLeases, EachRoomHasOneOwnerAndMovesWhenItsNodeDrains) {
  const std::string url = CreateTestDatabase();
  std::unique_ptr<RoomServer> a = StartLeasingServer(url, "node-a");
  std::unique_ptr<RoomServer> b = StartLeasingServer(url, "node-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string address_a = absl::StrCat("127.0.0.1:", a->grpc_port());
  const std::string address_b = absl::StrCat("127.0.0.1:", b->grpc_port());
  auto client_a = RoomClient::Connect(a->grpc_port());
  auto client_b = RoomClient::Connect(b->grpc_port());

  // Until the nodes have balanced, a room may be served by A alone; then
  // each room has exactly one owner, and the other node names it.
  std::map<int, std::string> owner_of;  // room -> node address
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int pushed = 0;
  bool b_serves_some = false;
  // Until B serves some rooms and two passes in a row see the same owners
  // (balancing may take a few rounds under load).
  std::map<int, std::string> previous;
  while (!(b_serves_some && owner_of == previous) && std::chrono::steady_clock::now() < deadline) {
    previous = std::move(owner_of);
    owner_of.clear();
    b_serves_some = false;
    for (int i = 0; i < kRooms; ++i) {
      const std::string id = "m" + std::to_string(pushed++);
      Attempt via_a, via_b;
      // Both refuse while a shard is between owners (released, not yet
      // taken: up to one round); both accepting would be the bug.
      for (int tries = 0; tries < 100; ++tries) {
        via_a = PushOne(*client_a, RoomName(i), id);
        via_b = PushOne(*client_b, RoomName(i), id + "-b");
        if (via_a.status.ok() || via_b.status.ok()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ASSERT_NE(via_a.status.ok(), via_b.status.ok())
          << RoomName(i) << ": a " << via_a.status.error_message() << ", b "
          << via_b.status.error_message();
      const Attempt& refused = via_a.status.ok() ? via_b : via_a;
      EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
      const std::string& owner = via_a.status.ok() ? address_a : address_b;
      // As of the refusing node's last round: the owner, or nobody yet.
      if (!refused.owner.empty()) {
        EXPECT_EQ(refused.owner, owner) << RoomName(i);
      }
      owner_of[i] = owner;
      if (owner == address_b) b_serves_some = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_TRUE(b_serves_some) << "node-b never got a share of the shards";
  ASSERT_EQ(owner_of, previous) << "the owners never settled";

  // Either node tells a gateway the same owners, matching who served what.
  for (RoomServer* node : {a.get(), b.get()}) {
    auto cluster = v1::RoomCluster::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", node->grpc_port()), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::ShardOwnersResponse owners;
    ASSERT_TRUE(cluster->ShardOwners(&context, v1::ShardOwnersRequest(), &owners).ok());
    EXPECT_EQ(owners.shard_count(), kShardCount);
    std::map<int, std::string> by_shard;
    for (const v1::ShardOwner& owner : owners.owners()) by_shard[owner.shard()] = owner.address();
    for (const auto& [room, address] : owner_of) {
      auto it = by_shard.find(ShardOf(RoomName(room)));
      // A shard being handed over right now may be missing; never wrong.
      if (it != by_shard.end()) {
        EXPECT_EQ(it->second, address) << RoomName(room);
      }
    }
    EXPECT_GE(by_shard.size(), static_cast<size_t>(kShardCount) * 3 / 4);
  }

  // A subscriber of one of A's rooms is told to resync when A drains.
  int a_room = -1;
  for (const auto& [room, owner] : owner_of) {
    if (owner == address_a) a_room = room;
  }
  ASSERT_GE(a_room, 0);
  v1::SubscribeRequest subscribe;
  subscribe.set_room(RoomName(a_room));
  grpc::ClientContext subscribe_context;
  auto reader = client_a->stub().Subscribe(&subscribe_context, subscribe);
  v1::SubscribeEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_live());

  a->Drain(absl::Seconds(5));
  bool resync = false;
  while (reader->Read(&event)) resync = resync || event.has_resync();
  EXPECT_TRUE(resync);

  // B takes A's shards within a round or two, and holds every push that
  // either node acknowledged.
  for (int i = 0; i < kRooms; ++i) {
    std::vector<v1::Document> docs;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    Attempt attempt;
    do {
      attempt = PushOne(*client_b, RoomName(i), "after-drain");
      if (!attempt.status.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (!attempt.status.ok() && std::chrono::steady_clock::now() < until);
    ASSERT_TRUE(attempt.status.ok()) << RoomName(i) << ": " << attempt.status.error_message();
    docs = client_b->PullAll(RoomName(i), "messages", 1000);
    // One document per round of the loop above (from its owner at the
    // time), plus this one.
    EXPECT_GE(docs.size(), 2u) << RoomName(i);
    for (size_t d = 0; d < docs.size(); ++d) {
      EXPECT_EQ(docs[d].seq(), static_cast<int64_t>(d + 1)) << RoomName(i);
    }
  }
}

}  // namespace
}  // namespace roomsync::testing

// Subscribe: catch-up from a checkpoint then live changes with no gap and
// no duplicate while writes race the switch; Resync when the stream cannot
// be served exactly.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/room/room_client.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using StoreUrlFactory = std::string (*)();

class RoomSubscribe : public ::testing::TestWithParam<StoreUrlFactory> {
 protected:
  void Start(RoomServiceConfig service) {
    server_ = StartTestServer(GetParam()(), service);
    client_ = RoomClient::Connect(server_->grpc_port());
  }
  std::unique_ptr<RoomServer> server_;
  std::unique_ptr<RoomClient> client_;
};

TEST_P(RoomSubscribe, CatchUpThenLiveWithoutGapOrDuplicateWhileWritesContinue) {
  RoomServiceConfig service;
  service.recent_changes_per_room = 16;  // catch-up must cross store and cache
  Start(service);
  constexpr int kBefore = 300, kTotal = 900;
  int64_t t = NowMs();
  for (int i = 0; i < kBefore; ++i) {
    ASSERT_TRUE(client_->Push("live", "messages", {DocJson("m" + std::to_string(i), t, "x")}).status.ok());
  }
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    auto writer_client = RoomClient::Connect(server_->grpc_port());
    for (int i = kBefore; i < kTotal; ++i) {
      if (!writer_client->Push("live", "messages", {DocJson("m" + std::to_string(i), t, "x")}).status.ok()) {
        writer_failed = true;
      }
    }
  });

  constexpr int kFrom = 100;
  v1::SubscribeRequest request;
  request.set_room("live");
  v1::PullRequest probe;
  probe.set_room("live");
  probe.set_batch_size(1);
  v1::PullResponse probed;
  ASSERT_TRUE(client_->Pull(probe, &probed).ok());
  request.mutable_checkpoint()->set_seq(kFrom);
  request.mutable_checkpoint()->set_epoch(probed.checkpoint().epoch());

  grpc::ClientContext context;
  auto reader = client_->stub().Subscribe(&context, request);
  v1::SubscribeEvent event;
  std::vector<int64_t> seqs;
  bool live = false;
  while (static_cast<int>(seqs.size()) < kTotal - kFrom && reader->Read(&event)) {
    ASSERT_FALSE(event.has_resync()) << event.resync().reason();
    if (event.has_live()) {
      EXPECT_FALSE(live) << "Live marker sent twice";
      live = true;
      continue;
    }
    for (const v1::Document& d : event.changes().documents()) seqs.push_back(d.seq());
    EXPECT_EQ(event.changes().checkpoint().seq(), seqs.back());
  }
  writer.join();
  context.TryCancel();
  EXPECT_FALSE(writer_failed);
  EXPECT_TRUE(live);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kTotal - kFrom));
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], kFrom + 1 + static_cast<int64_t>(i));
}

TEST_P(RoomSubscribe, WithoutCheckpointOnlyLiveChangesArrive) {
  Start({});
  int64_t t = NowMs();
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("old", t, "x")}).status.ok());
  v1::SubscribeRequest request;
  request.set_room("r");
  request.set_collection("threads");
  grpc::ClientContext context;
  auto reader = client_->stub().Subscribe(&context, request);
  v1::SubscribeEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_live());
  EXPECT_EQ(event.live().checkpoint().seq(), 1);
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("other", t, "x")}).status.ok());
  ASSERT_TRUE(client_->Push("r", "threads", {DocJson("mine", t, "x")}).status.ok());
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_EQ(event.changes().documents_size(), 1);  // the messages change was filtered out
  EXPECT_EQ(event.changes().documents(0).id(), "mine");
  EXPECT_EQ(event.changes().checkpoint().seq(), 3);
  context.TryCancel();
}

TEST_P(RoomSubscribe, CheckpointOfAnotherEpochGetsResync) {
  Start({});
  ASSERT_TRUE(client_->Push("r", "messages", {DocJson("a", NowMs(), "x")}).status.ok());
  v1::SubscribeRequest request;
  request.set_room("r");
  request.mutable_checkpoint()->set_seq(1);
  request.mutable_checkpoint()->set_epoch("not-this-room");
  grpc::ClientContext context;
  auto reader = client_->stub().Subscribe(&context, request);
  v1::SubscribeEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_TRUE(event.has_resync());
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_P(RoomSubscribe, CatchUpLargerThanTheStreamServesGetsResync) {
  RoomServiceConfig service;
  service.max_subscribe_catch_up = 10;
  Start(service);
  std::vector<std::string> docs;
  for (int i = 0; i < 20; ++i) docs.push_back(DocJson("d" + std::to_string(i), NowMs(), "x"));
  PushResult pushed = client_->Push("r", "messages", docs);
  ASSERT_TRUE(pushed.status.ok());
  v1::SubscribeRequest request;
  request.set_room("r");
  request.mutable_checkpoint()->set_seq(0);
  request.mutable_checkpoint()->set_epoch(pushed.response.checkpoint().epoch());
  grpc::ClientContext context;
  auto reader = client_->stub().Subscribe(&context, request);
  v1::SubscribeEvent event;
  bool resync = false;
  while (reader->Read(&event)) resync = resync || event.has_resync();
  EXPECT_TRUE(resync);
}

TEST_P(RoomSubscribe, SlowSubscriberGetsResyncAndOthersKeepUp) {
  RoomServiceConfig service;
  service.max_subscriber_queue = 4;
  Start(service);
  v1::SubscribeRequest request;
  request.set_room("r");
  grpc::ClientContext slow_context, fast_context;
  auto slow = client_->stub().Subscribe(&slow_context, request);
  auto fast_client = RoomClient::Connect(server_->grpc_port());
  auto fast = fast_client->stub().Subscribe(&fast_context, request);
  v1::SubscribeEvent event;
  ASSERT_TRUE(slow->Read(&event) && event.has_live());
  ASSERT_TRUE(fast->Read(&event) && event.has_live());
  // Big documents fill the slow stream's flow-control window quickly.
  constexpr int kPushes = 200;
  std::thread writer([&] {
    auto writer_client = RoomClient::Connect(server_->grpc_port());
    for (int i = 0; i < kPushes; ++i) {
      writer_client->Push("r", "messages", {DocJson("d" + std::to_string(i), NowMs(), std::string(60000, 'c'))});
    }
  });
  int fast_seen = 0;
  while (fast_seen < kPushes && fast->Read(&event)) {
    ASSERT_FALSE(event.has_resync());
    fast_seen += event.changes().documents_size();
  }
  writer.join();
  EXPECT_EQ(fast_seen, kPushes);
  bool resync = false;
  int slow_seen = 0;
  while (slow->Read(&event)) {
    if (event.has_resync()) resync = true;
    slow_seen += event.changes().documents_size();
  }
  EXPECT_TRUE(resync);
  EXPECT_LT(slow_seen, kPushes);
  fast_context.TryCancel();
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RoomSubscribe, ::testing::Values(&TempSqliteUrl));
INSTANTIATE_TEST_SUITE_P(Postgres, RoomSubscribe, ::testing::Values(&CreateTestDatabase));

}  // namespace
}  // namespace roomsync::testing

// The per-room stored-bytes quota: a push that would take the room past it
// is refused whole; replacing by smaller states and deleting still work at
// the limit; the count survives a restart (it lives in the store).
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/room/room_client.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using StoreUrlFactory = std::string (*)();

class RoomQuota : public ::testing::TestWithParam<StoreUrlFactory> {
 protected:
  void SetUp() override {
    url_ = GetParam()();
    Start();
  }
  void Start() {
    client_.reset();
    server_.reset();
    RoomServiceConfig service;
    service.max_room_bytes = 1000;
    server_ = StartTestServer(url_, service);
    client_ = RoomClient::Connect(server_->grpc_port());
  }
  std::string url_;
  std::unique_ptr<RoomServer> server_;
  std::unique_ptr<RoomClient> client_;
};

TEST_P(RoomQuota, RefusesPushesPastTheQuotaWholeAndCountsAcrossRestarts) {
  int64_t t = NowMs();
  // Three documents of ~300 bytes: 900 stored of 1000.
  std::vector<std::string> first;
  for (int i = 0; i < 3; ++i) first.push_back(DocJson("d" + std::to_string(i), t, std::string(250, 'x')));
  int64_t stored = 0;
  for (const std::string& doc : first) stored += static_cast<int64_t>(doc.size());
  ASSERT_LE(stored, 1000);
  ASSERT_TRUE(client_->Push("q", "messages", first).status.ok());

  // Two more small ones, together over the quota: refused whole.
  PushResult over = client_->Push("q", "messages", {DocJson("e1", t, "y"), DocJson("e2", t, std::string(100, 'y'))});
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(over.error_code, "room_quota_exceeded");
  EXPECT_NE(over.status.error_message().find("quota of 1000 stored bytes"), std::string::npos)
      << over.status.error_message();
  EXPECT_EQ(client_->PullAll("q", "", 100).size(), 3u);

  // At the limit a document can still shrink, and a tombstone frees room.
  ASSERT_TRUE(client_->Push("q", "messages", {DocJson("d0", t + 1, "small")}).status.ok());
  ASSERT_TRUE(client_->Push("q", "messages", {DocJson("d1", t + 1, "", true)}).status.ok());
  PushResult fits = client_->Push("q", "messages", {DocJson("e1", t, std::string(300, 'z'))});
  EXPECT_TRUE(fits.status.ok()) << fits.status.error_message();

  // The count is the store's: after a restart the room is still nearly full.
  Start();
  PushResult after = client_->Push("q", "messages", {DocJson("e3", t, std::string(400, 'w'))});
  EXPECT_EQ(after.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(client_->Push("q", "messages", {DocJson("e4", t, "tiny")}).status.ok());
  // Other rooms have their own quota.
  EXPECT_TRUE(client_->Push("other", "messages", {DocJson("o", t, std::string(400, 'w'))}).status.ok());
}

TEST_P(RoomQuota, OneRefusedPushInAGroupLeavesTheOthersCommitted) {
  int64_t t = NowMs();
  std::vector<std::thread> writers;
  std::atomic<int> ok{0}, refused{0};
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      // One channel for all: the 8 calls still reach the room at once.
      PushResult r = client_->Push("g", "messages", {DocJson("w" + std::to_string(w), t, std::string(200, 'x'))});
      if (r.status.ok()) {
        ++ok;
      } else if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++refused;
      } else {
        ADD_FAILURE() << "push failed otherwise: " << r.status.error_code() << " "
                      << r.status.error_message();
      }
    });
  }
  for (std::thread& t2 : writers) t2.join();
  // ~240 bytes each: four fit in 1000, the rest are refused, however grouped.
  EXPECT_EQ(ok + refused, 8);
  EXPECT_EQ(static_cast<size_t>(ok.load()), client_->PullAll("g", "", 100).size());
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 4);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RoomQuota, ::testing::Values(&TempSqliteUrl));
INSTANTIATE_TEST_SUITE_P(Postgres, RoomQuota, ::testing::Values(&CreateTestDatabase));

}  // namespace
}  // namespace roomsync::testing

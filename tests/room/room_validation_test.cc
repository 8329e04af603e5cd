// Bad input through gRPC: every malformed request is refused whole with
// INVALID_ARGUMENT and a message that names the problem, and nothing is
// written.
#include <string>

#include <gtest/gtest.h>

#include "tests/room/room_client.h"
#include "tests/support/pg_harness.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using StoreUrlFactory = std::string (*)();

// Limits are enforced before the store is touched, but "nothing written"
// is checked against each store.
class RoomValidation : public ::testing::TestWithParam<StoreUrlFactory> {
 protected:
  void SetUp() override {
    RoomServiceConfig service;
    service.limits.max_document_bytes = 1024;
    service.limits.max_documents_per_push = 5;
    service.limits.max_push_bytes = 4096;
    service.limits.max_json_depth = 8;
    service.allowed_collections["messages"] = true;
    service.allowed_collections["pins"] = true;
    server_ = StartTestServer(GetParam()(), service);
    client_ = RoomClient::Connect(server_->grpc_port());
    // One stored document, so "nothing written" is checked against state.
    ASSERT_TRUE(client_->Push("room", "messages", {DocJson("keep", NowMs(), "x")}).status.ok());
  }

  // Pushes [valid, bad] and expects the whole push refused with a message
  // containing `expected` and the store unchanged.
  void ExpectRefused(const std::vector<std::string>& docs, const std::string& expected,
                     const std::string& room = "room", const std::string& collection = "messages",
                     const std::string& code = "invalid_argument") {
    std::vector<std::string> batch = {DocJson("fresh", NowMs(), "y")};
    batch.insert(batch.end(), docs.begin(), docs.end());
    PushResult result = client_->Push(room, collection, batch);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(result.status.error_message().find(expected), std::string::npos)
        << "message was: " << result.status.error_message();
    EXPECT_EQ(result.error_code, code);
    std::vector<v1::Document> docs_after = client_->PullAll("room", "", 100);
    ASSERT_EQ(docs_after.size(), 1u);
    EXPECT_EQ(docs_after[0].id(), "keep");
  }

  std::unique_ptr<RoomServer> server_;
  std::unique_ptr<RoomClient> client_;
};

TEST_P(RoomValidation, RefusesMalformedDocuments) {
  int64_t t = NowMs();
  ExpectRefused({"{\"timestamp\":1}"}, "items[1].newDocumentState: document has no \"id\"");
  ExpectRefused({"{\"id\":7,\"timestamp\":1}"}, "\"id\" must be a string");
  ExpectRefused({"{\"id\":\"\",\"timestamp\":1}"}, "\"id\" must be 1-256 bytes");
  ExpectRefused({"{\"id\":\"" + std::string(257, 'i') + "\",\"timestamp\":1}"}, "\"id\" must be 1-256 bytes");
  ExpectRefused({"[1,2]"}, "must be a JSON object");
  ExpectRefused({"\"text\""}, "must be a JSON object");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1"}, "not valid JSON");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1,\"x\":\"\xff\xfe\"}"}, "not valid UTF-8");
  ExpectRefused({"{\"id\":\"a\"}"}, "has no \"timestamp\"");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":\"soon\"}"}, "\"timestamp\" must be an integer");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1.5}"}, "\"timestamp\" must be an integer");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1,\"_deleted\":\"yes\"}"}, "\"_deleted\" must be a boolean");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1,\"_collection\":\"x\"}"}, "_collection");
  ExpectRefused({"{\"id\":\"a\",\"timestamp\":1,\"d\":[[[[[[[[[[1]]]]]]]]]]}"}, "nested deeper than 8");
  ExpectRefused({DocJson("a", t + 3600 * 1000, "future")}, "ahead of the server clock", "room",
                "messages", "timestamp_in_future");
}

TEST_P(RoomValidation, RefusesOversizeDocumentsAndPushes) {
  int64_t t = NowMs();
  const std::string room = "room", collection = "messages", too_large = "payload_too_large";
  ExpectRefused({DocJson("big", t, std::string(2000, 'c'))}, "larger than the limit of 1024", room,
                collection, too_large);
  ExpectRefused({DocJson("1", t, "a"), DocJson("2", t, "a"), DocJson("3", t, "a"),
                 DocJson("4", t, "a"), DocJson("5", t, "a")},
                "at most 5 documents", room, collection, too_large);
  std::vector<std::string> heavy;
  for (int i = 0; i < 4; ++i) heavy.push_back(DocJson("h" + std::to_string(i), t, std::string(960, 'c')));
  ExpectRefused(heavy, "at most 4096 bytes", room, collection, too_large);
}

TEST_P(RoomValidation, RefusesBadNames) {
  int64_t t = NowMs();
  std::vector<std::string> ok = {DocJson("z", t, "a")};
  ExpectRefused(ok, "room name may only contain", "bad/room");
  ExpectRefused(ok, "room name must not be", "..");
  ExpectRefused(ok, "room name must be 1-128", std::string(129, 'r'));
  ExpectRefused(ok, "room name must be 1-128", "");
  ExpectRefused(ok, "collection name must start with a letter", "room", "1abc");
  ExpectRefused(ok, "collection name may only contain", "room", "mEssages");
  ExpectRefused(ok, "collection is required", "room", "");
  ExpectRefused(ok, "is not allowed on this server", "room", "threads");
}

TEST_P(RoomValidation, RefusesBadAssumedMaster) {
  PushResult result = client_->PushRow("room", "pins", DocJson("p", NowMs(), "x"), "{\"timestamp\":true}");
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(result.status.error_message().find("assumedMasterState"), std::string::npos);
  result = client_->PushRow("room", "pins", DocJson("p", NowMs(), "x"), "[]");
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client_->PullAll("room", "pins", 10).size(), 0u);
}

TEST_P(RoomValidation, RefusesBadCheckpointsAndPageSizes) {
  v1::PullRequest pull;
  pull.set_room("room");
  pull.mutable_checkpoint()->set_seq(-1);
  v1::PullResponse pulled;
  grpc::Status status = client_->Pull(pull, &pulled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("checkpoint.seq must not be negative"), std::string::npos);
  pull.mutable_checkpoint()->set_seq(5);
  status = client_->Pull(pull, &pulled);
  EXPECT_NE(status.error_message().find("has a seq but no epoch"), std::string::npos);
  pull.clear_checkpoint();
  pull.set_batch_size(1001);
  status = client_->Pull(pull, &pulled);
  EXPECT_NE(status.error_message().find("batch_size must be between 1 and 1000"), std::string::npos);

  v1::HistoryRequest history;
  history.set_room("room");
  history.set_limit(-3);
  v1::HistoryResponse historied;
  status = client_->History(history, &historied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("limit must be between"), std::string::npos);

  v1::SubscribeRequest subscribe;
  subscribe.set_room("room");
  subscribe.mutable_checkpoint()->set_epoch(std::string(100, 'e'));
  grpc::ClientContext context;
  auto reader = client_->stub().Subscribe(&context, subscribe);
  v1::SubscribeEvent event;
  EXPECT_FALSE(reader->Read(&event));
  status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("epoch is too long"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RoomValidation, ::testing::Values(&TempSqliteUrl));
INSTANTIATE_TEST_SUITE_P(Postgres, RoomValidation, ::testing::Values(&CreateTestDatabase));

}  // namespace
}  // namespace roomsync::testing

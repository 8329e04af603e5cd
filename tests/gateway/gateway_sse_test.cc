// The SSE stream end to end: live delivery, catch-up to live with racing
// writes, Last-Event-ID resume, RESYNC for slow consumers and foreign
// epochs, keep-alives, drain.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/gateway/gateway_test_node.h"

namespace roomsync::testing {
namespace {

std::string Doc(const std::string& id, const std::string& padding = "x") {
  return absl::StrCat(R"({"id":")", id, R"(","timestamp":1,"ciphertext":")", padding, R"("})");
}

HttpResponse PushDocs(int port, const std::string& room, const std::string& collection,
                      const std::vector<std::string>& documents) {
  std::string body = "[";
  for (size_t i = 0; i < documents.size(); ++i) absl::StrAppend(&body, i ? "," : "", documents[i]);
  body += "]";
  return Http(port, "POST", absl::StrCat("/v1/rooms/", room, "/replicate/push?collection=", collection),
              body);
}

std::unique_ptr<TestConnection> OpenStream(
    int port, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    int receive_buffer_bytes = 0) {
  auto connection = std::make_unique<TestConnection>(port, receive_buffer_bytes);
  connection->Send(RequestText("GET", target, "", headers));
  HttpResponse head = connection->ReadStreamHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-type"), "text/event-stream");
  EXPECT_EQ(head.Header("cache-control"), "no-cache");
  return connection;
}

// The next event that is not a keep-alive comment.
std::optional<SseEvent> NextData(TestConnection& connection,
                                 absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::optional<SseEvent> event = connection.NextEvent(deadline - absl::Now());
    if (!event.has_value()) return std::nullopt;
    if (!event->comment) return event;
  }
  return std::nullopt;
}

// Reads events until `count` documents arrived; their ids in order.
std::vector<std::string> ReadDocumentIds(TestConnection& connection, size_t count,
                                         std::string* last_event_id = nullptr) {
  std::vector<std::string> ids;
  int64_t previous_seq = -1;
  while (ids.size() < count) {
    std::optional<SseEvent> event = NextData(connection);
    if (!event.has_value()) break;
    EXPECT_NE(event->data, "\"RESYNC\"");
    if (event->data == "\"RESYNC\"") break;
    ParsedCheckpoint checkpoint = CheckpointOf(event->data);
    EXPECT_EQ(event->id, checkpoint.Json());
    EXPECT_GT(checkpoint.seq, previous_seq) << "event ids must increase";
    previous_seq = checkpoint.seq;
    for (std::string& id : DocumentIds(event->data)) ids.push_back(std::move(id));
    if (last_event_id != nullptr) *last_event_id = event->id;
  }
  return ids;
}

std::vector<std::string> Names(const std::string& prefix, int from, int to) {
  std::vector<std::string> names;
  for (int i = from; i < to; ++i) names.push_back(absl::StrCat(prefix, i));
  return names;
}

class GatewaySseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = StartTestNode([](NodeConfig& config) {
      config.gateway.keepalive_interval = absl::Milliseconds(200);
      // Room for a fast reader on a busy CI machine to lag a few frames;
      // the slow one (4 KiB window) still overflows it many times over.
      config.gateway.max_sse_queue_bytes = 512 * 1024;
    });
    port_ = node_->http_port();
  }
  std::unique_ptr<Node> node_;
  int port_ = 0;
};

TEST_F(GatewaySseTest, LiveStreamDeliversLaterCommitsPerCollectionFilter) {
  auto all = OpenStream(port_, "/v1/rooms/live/replicate/pull/stream");
  auto threads = OpenStream(port_, "/api/room/live/replicate/pull/stream?collection=threads");
  ASSERT_EQ(PushDocs(port_, "live", "messages", {Doc("m1")}).status, 200);
  ASSERT_EQ(PushDocs(port_, "live", "threads", {Doc("t1")}).status, 200);

  std::optional<SseEvent> first = NextData(*all);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->data, absl::StrCat(R"({"documents":[{"_collection":"messages","id":"m1",)",
                                      R"("timestamp":1,"ciphertext":"x"}],"checkpoint":)",
                                      first->id, "}"));
  EXPECT_EQ(ReadDocumentIds(*all, 1), std::vector<std::string>{"t1"});
  std::optional<SseEvent> only = NextData(*threads);
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->data, absl::StrCat(R"({"documents":[)", Doc("t1"), R"(],"checkpoint":)",
                                     only->id, "}"));
}

// Every document id in the room after `checkpoint`, in seq order (pull).
std::vector<std::string> PullIdsAfter(int port, const std::string& room,
                                      ParsedCheckpoint checkpoint) {
  std::vector<std::string> ids;
  while (true) {
    HttpResponse page = Http(port, "GET", absl::StrCat("/v1/rooms/", room,
                                                       "/replicate/pull?batchSize=1000&checkpoint=",
                                                       UrlEncode(checkpoint.Json())));
    std::vector<std::string> page_ids = DocumentIds(page.body);
    if (page_ids.empty()) return ids;
    ids.insert(ids.end(), page_ids.begin(), page_ids.end());
    checkpoint = CheckpointOf(page.body);
  }
}

TEST_F(GatewaySseTest, CatchUpThenLiveWithRacingWritesHasNoGapAndNoDuplicate) {
  // A catch-up of several pages while three writers commit: live batches
  // overlap the pulled pages, and the switch must drop exactly the overlap.
  for (int batch = 0; batch < 30; ++batch) {
    std::vector<std::string> documents;
    for (const std::string& id : Names("d", batch * 100, batch * 100 + 100)) {
      documents.push_back(Doc(id));
    }
    ASSERT_EQ(PushDocs(port_, "race", "messages", documents).status, 200);
  }
  HttpResponse page = Http(port_, "GET", "/v1/rooms/race/replicate/pull?batchSize=100");
  ParsedCheckpoint checkpoint = CheckpointOf(page.body);
  ASSERT_EQ(checkpoint.seq, 100);

  constexpr int kWriters = 3, kPushesPerWriter = 100;
  std::atomic<int> failed_pushes{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPushesPerWriter; ++i) {
        if (PushDocs(port_, "race", "messages", {Doc(absl::StrCat("w", w, "-", i))}).status != 200) {
          ++failed_pushes;
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(20));  // let the writes race the catch-up
  auto stream = OpenStream(port_, absl::StrCat("/v1/rooms/race/replicate/pull/stream?checkpoint=",
                                               UrlEncode(checkpoint.Json())));
  std::vector<std::string> ids = ReadDocumentIds(*stream, 2900 + kWriters * kPushesPerWriter);
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(failed_pushes, 0);
  // Exactly what a pull from the same checkpoint returns, in the same order.
  EXPECT_EQ(ids, PullIdsAfter(port_, "race", checkpoint));
  EXPECT_FALSE(NextData(*stream, absl::Milliseconds(300)).has_value()) << "a duplicate followed";
}

TEST_F(GatewaySseTest, LastEventIdResumeLosesNothing) {
  auto stream = OpenStream(port_, "/v1/rooms/resume/replicate/pull/stream");
  for (const std::string& id : Names("r", 0, 5)) {
    ASSERT_EQ(PushDocs(port_, "resume", "messages", {Doc(id)}).status, 200);
  }
  std::string last_event_id;
  EXPECT_EQ(ReadDocumentIds(*stream, 3, &last_event_id), Names("r", 0, 3));
  stream.reset();  // the client drops the connection
  for (const std::string& id : Names("r", 5, 10)) {
    ASSERT_EQ(PushDocs(port_, "resume", "messages", {Doc(id)}).status, 200);
  }
  auto resumed = OpenStream(port_, "/v1/rooms/resume/replicate/pull/stream",
                            {{"Last-Event-ID", last_event_id}});
  EXPECT_EQ(ReadDocumentIds(*resumed, 7), Names("r", 3, 10));
  ASSERT_EQ(PushDocs(port_, "resume", "messages", {Doc("r10")}).status, 200);
  EXPECT_EQ(ReadDocumentIds(*resumed, 1), std::vector<std::string>{"r10"});
}

TEST_F(GatewaySseTest, SlowConsumerGetsResyncWhileOthersContinue) {
  auto slow = OpenStream(port_, "/v1/rooms/slow/replicate/pull/stream", {}, 4096);
  auto fast = OpenStream(port_, "/v1/rooms/slow/replicate/pull/stream");
  const std::string padding(2000, 'p');
  constexpr int kPushes = 200;
  std::vector<std::string> expected;
  std::thread writer([&] {
    for (int push = 0; push < kPushes; ++push) {
      std::vector<std::string> documents;
      for (const std::string& id : Names(absl::StrCat("s", push, "-"), 0, 20)) {
        documents.push_back(Doc(id, padding));
      }
      PushDocs(port_, "slow", "messages", documents);
    }
  });
  std::vector<std::string> fast_ids = ReadDocumentIds(*fast, kPushes * 20);
  writer.join();
  EXPECT_EQ(fast_ids.size(), static_cast<size_t>(kPushes * 20));
  // The slow one now reads what was queued for it: a prefix, then RESYNC,
  // then the end of the stream.
  EXPECT_TRUE(slow->ReadUntil("data: \"RESYNC\"\n\n", absl::Seconds(10)));
  EXPECT_TRUE(slow->WaitForClose(absl::Seconds(5)));
  HttpResponse metrics = Http(port_, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("roomsync_gateway_sse_resyncs_total 1"), std::string::npos);
}

TEST_F(GatewaySseTest, KeepAliveCommentsComeFromTheSharedTicker) {
  auto first = OpenStream(port_, "/v1/rooms/quiet/replicate/pull/stream");
  auto second = OpenStream(port_, "/v1/rooms/other/replicate/pull/stream");
  for (auto* stream : {first.get(), second.get()}) {
    std::optional<SseEvent> event = stream->NextEvent(absl::Seconds(2));
    ASSERT_TRUE(event.has_value());
    EXPECT_TRUE(event->comment);
  }
}

TEST_F(GatewaySseTest, ForeignEpochGetsResyncAndBadCheckpointGets400) {
  ASSERT_EQ(PushDocs(port_, "epoch", "messages", {Doc("e")}).status, 200);
  auto stream = OpenStream(port_, "/v1/rooms/epoch/replicate/pull/stream",
                           {{"Last-Event-ID", R"({"seq":1,"epoch":"another-history"})"}});
  std::optional<SseEvent> event = NextData(*stream);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->data, "\"RESYNC\"");
  EXPECT_TRUE(stream->WaitForClose(absl::Seconds(5)));

  HttpResponse bad = Http(port_, "GET", "/v1/rooms/epoch/replicate/pull/stream?checkpoint=%7B");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad.body), "invalid_argument");
}

TEST_F(GatewaySseTest, DrainEndsStreams) {
  auto stream = OpenStream(port_, "/v1/rooms/drain/replicate/pull/stream");
  std::thread drain([&] { node_->Drain(absl::Seconds(2)); });
  EXPECT_TRUE(stream->WaitForClose(absl::Seconds(5)));
  drain.join();
}

}  // namespace
}  // namespace roomsync::testing

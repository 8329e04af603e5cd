// The unary HTTP API end to end: a real node, real sockets.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/gateway/gateway_test_node.h"

namespace roomsync::testing {
namespace {

class GatewayHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { node_ = StartTestNode(); }

  HttpResponse PushTo(const std::string& room, const std::string& collection, const std::string& body) {
    return Http(node_->http_port(), "POST",
                absl::StrCat("/v1/rooms/", room, "/replicate/push?collection=", collection), body,
                {{"Content-Type", "application/json"}});
  }
  HttpResponse Get(std::string_view target) { return Http(node_->http_port(), "GET", target); }
  std::string PullAll(const std::string& room) {
    return Get(absl::StrCat("/v1/rooms/", room, "/replicate/pull?batchSize=1000")).body;
  }

  std::unique_ptr<Node> node_;
};

std::string Doc(const std::string& id, int64_t timestamp, const std::string& text) {
  return absl::StrCat(R"({"id":")", id, R"(","timestamp":)", timestamp,
                      R"(,"iv":"x","ciphertext":")", text, R"("})");
}

TEST_F(GatewayHttpTest, HealthReadinessAndMetrics) {
  HttpResponse health = Get("/healthz");
  EXPECT_EQ(health.status, 200);
  HttpResponse ready = Get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  PushTo("r", "messages", absl::StrCat("[", Doc("a", 1, "x"), "]"));
  HttpResponse metrics = Get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find(
                R"(roomsync_gateway_requests_total{route="/v1/rooms/{room}/replicate/push",status="200"} 1)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("roomsync_gateway_sse_sessions"), std::string::npos);
}

TEST_F(GatewayHttpTest, PushThenPullReturnsTheClientsBytes) {
  std::string document = R"({"id":"msg-1","timestamp":1700000001000,"iv":"AAEC","ciphertext":"Zm9v","n":1.50})";
  HttpResponse pushed = PushTo("room-1", "messages", absl::StrCat("[ ", document, " ]"));
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  EXPECT_EQ(pushed.body, R"({"success":true,"conflicts":[]})");
  EXPECT_EQ(pushed.Header("content-type"), "application/json");

  HttpResponse filtered = Get("/v1/rooms/room-1/replicate/pull?collection=messages");
  ASSERT_EQ(filtered.status, 200);
  ParsedCheckpoint checkpoint = CheckpointOf(filtered.body);
  EXPECT_EQ(filtered.body, absl::StrCat(R"({"documents":[)", document, R"(],"checkpoint":)",
                                        checkpoint.Json(), "}"));
  EXPECT_EQ(checkpoint.seq, 1);
  // Not limited to one collection: "_collection" is spliced in first.
  HttpResponse all = Get("/api/room/room-1/replicate/pull");
  EXPECT_NE(all.body.find(R"([{"_collection":"messages","id":"msg-1",)"), std::string::npos)
      << all.body;
}

TEST_F(GatewayHttpTest, RxdbPushRowsAreAccepted) {
  std::string body = absl::StrCat(R"([{"newDocumentState":)", Doc("a", 10, "x"),
                                  R"(,"assumedMasterState":null}])");
  HttpResponse pushed = PushTo("rx", "messages", body);
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  EXPECT_EQ(DocumentIds(PullAll("rx")), std::vector<std::string>{"a"});
  // The stored object is the new state itself, not the row.
  EXPECT_NE(PullAll("rx").find(Doc("a", 10, "x").substr(1)), std::string::npos);
}

TEST_F(GatewayHttpTest, RepushingTheStoredStateIsANoOp) {
  std::string body = absl::StrCat("[", Doc("a", 100, "x"), "]");
  ASSERT_EQ(PushTo("idem", "messages", body).status, 200);
  std::string before = PullAll("idem");
  HttpResponse again = PushTo("idem", "messages", absl::StrCat("[\n  ", Doc("a", 100, "x"), "\n]"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, R"({"success":true,"conflicts":[]})");
  EXPECT_EQ(PullAll("idem"), before);  // same seq: nothing new was written
}

TEST_F(GatewayHttpTest, LastWriteWinsConflictReturnsTheServersDocument) {
  ASSERT_EQ(PushTo("lww", "messages", absl::StrCat("[", Doc("m", 2000, "Hi"), "]")).status, 200);
  HttpResponse stale = PushTo("lww", "messages", absl::StrCat("[", Doc("m", 1000, "Hey"), "]"));
  ASSERT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, absl::StrCat(R"({"success":true,"conflicts":[)", Doc("m", 2000, "Hi"), "]}"));
  HttpResponse newer = PushTo("lww", "messages", absl::StrCat("[", Doc("m", 3000, "Yo"), "]"));
  EXPECT_EQ(newer.body, R"({"success":true,"conflicts":[]})");
}

TEST_F(GatewayHttpTest, PullPagesWithCheckpointsAndValidatesParameters) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(PushTo("pages", "messages", absl::StrCat("[", Doc(absl::StrCat("d", i), 1, "x"), "]"))
                  .status,
              200);
  }
  HttpResponse first = Get("/v1/rooms/pages/replicate/pull?collection=messages&batchSize=2");
  EXPECT_EQ(DocumentIds(first.body), (std::vector<std::string>{"d0", "d1"}));
  ParsedCheckpoint checkpoint = CheckpointOf(first.body);
  HttpResponse second = Get(absl::StrCat("/v1/rooms/pages/replicate/pull?batchSize=2&checkpoint=",
                                         UrlEncode(checkpoint.Json())));
  EXPECT_EQ(DocumentIds(second.body), (std::vector<std::string>{"d2", "d3"}));
  // At the end: empty, and the checkpoint passed in comes back.
  ParsedCheckpoint end{5, checkpoint.epoch, ""};
  HttpResponse last = Get(absl::StrCat("/v1/rooms/pages/replicate/pull?checkpoint=",
                                       UrlEncode(end.Json())));
  EXPECT_TRUE(DocumentIds(last.body).empty());
  EXPECT_EQ(CheckpointOf(last.body).seq, 5);
  // Another epoch counts as no checkpoint: from the beginning.
  ParsedCheckpoint foreign{3, "not-this-rooms-epoch", ""};
  EXPECT_EQ(DocumentIds(Get(absl::StrCat("/v1/rooms/pages/replicate/pull?checkpoint=",
                                         UrlEncode(foreign.Json())))
                            .body)
                .size(),
            5u);
  EXPECT_EQ(DocumentIds(Get("/v1/rooms/pages/replicate/pull?checkpoint=null").body).size(), 5u);
  EXPECT_EQ(DocumentIds(Get("/v1/rooms/pages/replicate/pull?checkpoint=").body).size(), 5u);

  for (std::string bad : {"checkpoint=%7Bnope", "checkpoint=42", "checkpoint=%7B%22seq%22%3A-1%7D",
                               "batchSize=0", "batchSize=1001", "batchSize=ten",
                               "collection=Bad-Name", "checkpoint=%ZZ"}) {
    HttpResponse refused = Get(absl::StrCat("/v1/rooms/pages/replicate/pull?", bad));
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_EQ(ErrorCode(refused.body), "invalid_argument") << bad;
  }
}

TEST_F(GatewayHttpTest, HistoryIsNewestFirstWithANextCheckpoint) {
  for (int i = 0; i < 3; ++i) {
    PushTo("hist", "messages", absl::StrCat("[", Doc(absl::StrCat("h", i), 1, "x"), "]"));
  }
  HttpResponse page = Get("/v1/rooms/hist/history?collection=messages&limit=2");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(DocumentIds(page.body), (std::vector<std::string>{"h2", "h1"}));
  ParsedCheckpoint next = CheckpointOf(page.body, "next");
  ASSERT_GT(next.seq, 0) << page.body;
  HttpResponse older = Get(absl::StrCat("/v1/rooms/hist/history?collection=messages&limit=2&before=",
                                        UrlEncode(next.Json())));
  EXPECT_EQ(DocumentIds(older.body), (std::vector<std::string>{"h0"}));
  EXPECT_NE(older.body.find(R"("next":null)"), std::string::npos) << older.body;
  EXPECT_EQ(Get("/v1/rooms/hist/history?limit=0").status, 400);
}

TEST_F(GatewayHttpTest, BadPushesAreRefusedWholeAndWriteNothing) {
  ASSERT_EQ(PushTo("bad", "messages", absl::StrCat("[", Doc("keep", 1, "x"), "]")).status, 200);
  const std::string before = PullAll("bad");
  const int64_t far_future = NowMs() + 3600 * 1000;
  struct Case {
    std::string name, collection, body;
    int status;
    std::string code;
  };
  std::vector<Case> cases = {
      {"not json", "messages", "[{", 400, "invalid_argument"},
      {"not an array", "messages", Doc("a", 1, "x"), 400, "invalid_argument"},
      {"bad utf-8", "messages", "[{\"id\":\"a\",\"timestamp\":1,\"c\":\"\xff\xfe\"}]", 400,
       "invalid_argument"},
      {"no id", "messages", R"([{"timestamp":1}])", 400, "invalid_argument"},
      {"string timestamp", "messages", R"([{"id":"a","timestamp":"1"}])", 400, "invalid_argument"},
      {"reserved member", "messages", R"([{"id":"a","timestamp":1,"_collection":"x"}])", 400,
       "invalid_argument"},
      {"one bad item of two", "messages",
       absl::StrCat("[", Doc("good", 5, "x"), R"(,{"id":7,"timestamp":1}])"), 400, "invalid_argument"},
      {"deep nesting", "messages",
       absl::StrCat(R"([{"id":"a","timestamp":1,"x":)", std::string(100, '['),
                    std::string(100, ']'), "}]"),
       400, "invalid_argument"},
      {"no collection", "", absl::StrCat("[", Doc("a", 1, "x"), "]"), 400, "invalid_argument"},
      {"bad collection", "Messages", absl::StrCat("[", Doc("a", 1, "x"), "]"), 400,
       "invalid_argument"},
      {"timestamp in future", "messages", absl::StrCat("[", Doc("a", far_future, "x"), "]"), 400,
       "timestamp_in_future"},
  };
  for (const Case& c : cases) {
    HttpResponse refused = PushTo("bad", c.collection, c.body);
    EXPECT_EQ(refused.status, c.status) << c.name << ": " << refused.body;
    EXPECT_EQ(ErrorCode(refused.body), c.code) << c.name << ": " << refused.body;
  }
  std::string too_many = "[";
  for (int i = 0; i < 1001; ++i) {
    absl::StrAppend(&too_many, i ? "," : "", Doc(absl::StrCat("n", i), 1, "x"));
  }
  too_many += "]";
  // Too many documents, or one too large: 413 payload_too_large, as the room
  // service answers it (docs/api.md, Errors), and nothing is written.
  HttpResponse many = PushTo("bad", "messages", too_many);
  EXPECT_EQ(many.status, 413) << many.body;
  EXPECT_EQ(ErrorCode(many.body), "payload_too_large");
  HttpResponse large =
      PushTo("bad", "messages",
             absl::StrCat("[", Doc("big", 1, std::string(65 * 1024, 'x')), "]"));
  EXPECT_EQ(large.status, 413) << large.body;
  EXPECT_EQ(ErrorCode(large.body), "payload_too_large");
  EXPECT_EQ(PullAll("bad"), before);
}

TEST_F(GatewayHttpTest, ProtocolErrorsHaveTheirStatuses) {
  HttpResponse unknown = Get("/v1/nothing");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(ErrorCode(unknown.body), "not_found");
  HttpResponse wrong_method = Http(node_->http_port(), "GET", "/v1/rooms/r/replicate/push");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.Header("allow"), "POST, OPTIONS");
  EXPECT_EQ(Http(node_->http_port(), "POST", "/v1/rooms/r/replicate/pull", "[]").status, 405);
  HttpResponse bad_room = Get("/v1/rooms/a%20b/replicate/pull");
  EXPECT_EQ(bad_room.status, 400);
  EXPECT_EQ(Get("/v1/rooms/../replicate/pull").status, 400);
  EXPECT_EQ(ErrorCode(bad_room.body), "invalid_argument");
}

TEST_F(GatewayHttpTest, OversizedBodyIs413AndHugeHeadIs431) {
  std::string big(9 * 1024 * 1024, ' ');
  HttpResponse too_big = PushTo("big", "messages", big);
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(ErrorCode(too_big.body), "payload_too_large");
  HttpResponse huge_head = Http(node_->http_port(), "GET", "/healthz", "",
                                {{"X-Padding", std::string(20 * 1024, 'a')}});
  EXPECT_EQ(huge_head.status, 431);
  EXPECT_TRUE(DocumentIds(PullAll("big")).empty());
}

TEST_F(GatewayHttpTest, TruncatedBodyIs400AndWritesNothing) {
  TestConnection connection(node_->http_port());
  std::string body = absl::StrCat("[", Doc("t", 1, "x"), "]");
  connection.Send(RequestText("POST", "/v1/rooms/trunc/replicate/push?collection=messages",
                              body.substr(0, body.size() / 2),
                              {{"Content-Length", std::to_string(body.size())}}));
  connection.ShutdownSend();
  HttpResponse response = connection.ReadResponse();
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(DocumentIds(PullAll("trunc")).empty());
}

TEST_F(GatewayHttpTest, KeepAliveAndPipelinedRequestsAnswerInOrder) {
  TestConnection connection(node_->http_port());
  std::string push = RequestText("POST", "/v1/rooms/pipe/replicate/push?collection=messages",
                                 absl::StrCat("[", Doc("p", 1, "x"), "]"));
  std::string pull = RequestText("GET", "/v1/rooms/pipe/replicate/pull", "");
  std::string missing = RequestText("GET", "/nope", "");
  ASSERT_TRUE(connection.Send(push + pull + missing));
  HttpResponse first = connection.ReadResponse();
  HttpResponse second = connection.ReadResponse();
  HttpResponse third = connection.ReadResponse();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, R"({"success":true,"conflicts":[]})");
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(DocumentIds(second.body), std::vector<std::string>{"p"});
  EXPECT_EQ(third.status, 404);
  // Still open: one more request on the same connection.
  ASSERT_TRUE(connection.Send(RequestText("GET", "/healthz", "")));
  EXPECT_EQ(connection.ReadResponse().status, 200);
}

TEST_F(GatewayHttpTest, PreflightAndCorsHeaders) {
  HttpResponse preflight = Http(node_->http_port(), "OPTIONS", "/v1/rooms/r/replicate/push", "",
                                {{"Origin", "https://chat.example"},
                                 {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.Header("access-control-allow-origin"), "https://chat.example");
  EXPECT_EQ(preflight.Header("access-control-allow-methods"), "GET, POST, OPTIONS");
  EXPECT_EQ(preflight.Header("access-control-allow-headers"),
            "Authorization, Content-Type, Last-Event-ID");
  HttpResponse error = Http(node_->http_port(), "GET", "/nope", "", {{"Origin", "https://a.example"}});
  EXPECT_EQ(error.Header("access-control-allow-origin"), "https://a.example");
}

TEST(GatewayCors, OnlyConfiguredOriginsAreAllowed) {
  std::unique_ptr<Node> node = StartTestNode([](NodeConfig& config) {
    config.gateway.allowed_origins = {"https://chat.example"};
  });
  HttpResponse allowed = Http(node->http_port(), "GET", "/healthz", "",
                              {{"Origin", "https://chat.example"}});
  EXPECT_EQ(allowed.Header("access-control-allow-origin"), "https://chat.example");
  HttpResponse other = Http(node->http_port(), "GET", "/healthz", "", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(other.Header("access-control-allow-origin"), "");
  HttpResponse preflight = Http(node->http_port(), "OPTIONS", "/v1/rooms/r/replicate/pull", "",
                                {{"Origin", "https://evil.example"}});
  EXPECT_EQ(preflight.status, 403);
}

TEST(GatewaySlowloris, AnIncompleteHeadIsCutOffAtTheHeaderTimeout) {
  std::unique_ptr<Node> node = StartTestNode([](NodeConfig& config) {
    config.gateway.header_timeout = absl::Milliseconds(300);
  });
  TestConnection connection(node->http_port());
  ASSERT_TRUE(connection.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  absl::SleepFor(absl::Milliseconds(100));
  connection.Send("X-Slow: 1\r\n");  // trickling bytes does not extend the deadline
  EXPECT_TRUE(connection.WaitForClose(absl::Seconds(3)));
}

}  // namespace
}  // namespace roomsync::testing

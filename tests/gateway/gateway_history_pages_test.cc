// Cacheable history pages (gateway/history_pages.h, docs/api.md "History
// pages"): the URL, classification, ETag and Cache-Control logic as units,
// then over real sockets on a real node: with auth off and on, 304s, links
// that walk the room, and a page that changes once it is complete.
#include "gateway/history_pages.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/routes.h"
#include "tests/auth/test_token_signer.h"
#include "tests/gateway/gateway_test_node.h"

namespace roomsync::testing {
namespace {

v1::Checkpoint Head(int64_t last_seq, std::string epoch = "e1", int64_t compacted = 0) {
  v1::Checkpoint head;
  head.set_seq(last_seq);
  head.set_epoch(std::move(epoch));
  head.set_compacted(compacted);
  return head;
}

HistoryPageAddress Page(int64_t from, std::string epoch = "e1", int64_t compacted = 0) {
  return HistoryPageAddress{std::move(epoch), compacted, from, from + kHistoryPageSeqs - 1};
}

TEST(HistoryPageAddress, EverySeqBelongsToOneAlignedBlock) {
  EXPECT_EQ(HistoryPageOf(Head(500), 1).from_seq, 1);
  EXPECT_EQ(HistoryPageOf(Head(500), 100).from_seq, 1);
  EXPECT_EQ(HistoryPageOf(Head(500), 100).to_seq, 100);
  EXPECT_EQ(HistoryPageOf(Head(500), 101).from_seq, 101);
  EXPECT_EQ(HistoryPageOf(Head(500), 101).to_seq, 200);
  HistoryPageAddress page = HistoryPageOf(Head(500, "ep", 7), 450);
  EXPECT_EQ(page.epoch, "ep");
  EXPECT_EQ(page.compacted, 7);
  EXPECT_EQ(page.from_seq, 401);
}

TEST(HistoryPageAddress, ParsesTheCanonicalPathOnly) {
  absl::StatusOr<HistoryPageAddress> page = ParseHistoryPagePath("9f0c/15/201-300");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->epoch, "9f0c");
  EXPECT_EQ(page->compacted, 15);
  EXPECT_EQ(page->from_seq, 201);
  EXPECT_EQ(page->to_seq, 300);
  for (const char* bad : {"", "e", "e/0", "e/0/1-100/", "e/0/1-100/x", "/0/1-100", "e//1-100",
                          "e/0/100-1", "e/0/0-99", "e/0/2-101", "e/0/1-200", "e/0/1-1000000",
                          "e/0/1", "e/0/-100", "e/0/1-", "e/00/1-100", "e/0/01-100", "e/-1/1-100",
                          "e/0/1-1e2", "e%20x/0/1-100", "../0/1-100", "e/0/+1-100",
                          "e/0/99999999999999999999-1"}) {
    absl::StatusOr<HistoryPageAddress> parsed = ParseHistoryPagePath(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseHistoryPagePath("e/0/1-200").status().message().find("block of 100 seqs"),
            std::string::npos);
  EXPECT_NE(ParseHistoryPagePath("e/0/100-1").status().message().find("from > to"),
            std::string::npos);
}

TEST(HistoryPageAddress, UrlIsCanonicalAndParsesBack) {
  std::string url;
  AppendHistoryPageUrl(url, "lobby", Page(101, "9f0c", 3), "messages");
  EXPECT_EQ(url, "/v1/rooms/lobby/history/pages/9f0c/3/101-200?collection=messages");
  url.clear();
  AppendHistoryPageUrl(url, "lobby", Page(1), "");
  EXPECT_EQ(url, "/v1/rooms/lobby/history/pages/e1/0/1-100");
  Route route = MatchRoute(url);
  EXPECT_EQ(route.kind, RouteKind::kHistoryPage);
  EXPECT_EQ(route.room, "lobby");
  EXPECT_EQ(route.method, "GET");
  EXPECT_EQ(route.pattern, "/v1/rooms/{room}/history/pages/{page}");
  absl::StatusOr<HistoryPageAddress> back = ParseHistoryPagePath(route.page);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->from_seq, 1);
  Route api = MatchRoute("/api/room/lobby/history/pages/e1/0/1-100");
  EXPECT_EQ(api.kind, RouteKind::kHistoryPage);
  EXPECT_EQ(api.pattern, "/api/room/{room}/history/pages/{page}");
  EXPECT_EQ(MatchRoute("/v1/rooms/lobby/history").kind, RouteKind::kHistory);
  EXPECT_EQ(MatchRoute("/v1/rooms/lobby/history/page").kind, RouteKind::kNotFound);
}

TEST(HistoryPageState, OnlyACompletePageOfTheCurrentRoomIsCacheable) {
  EXPECT_EQ(ClassifyHistoryPage(Page(401), Head(500)), HistoryPageState::kComplete);
  EXPECT_EQ(ClassifyHistoryPage(Page(401), Head(499)), HistoryPageState::kOpen);
  EXPECT_EQ(ClassifyHistoryPage(Page(501), Head(500)), HistoryPageState::kOpen);
  EXPECT_EQ(ClassifyHistoryPage(Page(1, "e1", 0), Head(500, "e1", 40)),
            HistoryPageState::kRecompacted);
  EXPECT_EQ(ClassifyHistoryPage(Page(1, "e1", 40), Head(500, "e1", 40)),
            HistoryPageState::kComplete);
  EXPECT_EQ(ClassifyHistoryPage(Page(1, "e0"), Head(500, "e1")), HistoryPageState::kOtherEpoch);
}

TEST(HistoryPageCacheControl, PublicOrPrivateImmutableElseNoStore) {
  EXPECT_EQ(HistoryPageCacheControl(true, HistoryCacheScope::kPublic),
            "public, max-age=86400, immutable");
  EXPECT_EQ(HistoryPageCacheControl(true, HistoryCacheScope::kPrivate),
            "private, max-age=86400, immutable");
  EXPECT_EQ(HistoryPageCacheControl(false, HistoryCacheScope::kPublic), "no-store");
  EXPECT_EQ(HistoryPageCacheControl(false, HistoryCacheScope::kPrivate), "no-store");
}

TEST(HistoryPageETag, StrongQuotedAndNamesEveryInput) {
  const std::string etag = HistoryPageETag("lobby", Page(1), "messages", "body");
  ASSERT_EQ(etag.size(), 2 + 3 + 32);
  EXPECT_EQ(etag.front(), '"');
  EXPECT_EQ(etag.back(), '"');
  EXPECT_EQ(etag.substr(0, 4), "\"hp-");
  EXPECT_EQ(HistoryPageETag("lobby", Page(1), "messages", "body"), etag);  // every gateway
  std::set<std::string> others = {
      etag,
      HistoryPageETag("lobby2", Page(1), "messages", "body"),
      HistoryPageETag("lobby", Page(1, "e2"), "messages", "body"),
      HistoryPageETag("lobby", Page(1, "e1", 5), "messages", "body"),
      HistoryPageETag("lobby", Page(101), "messages", "body"),
      HistoryPageETag("lobby", Page(1), "", "body"),
      HistoryPageETag("lobby", Page(1), "messages", "body2"),
  };
  EXPECT_EQ(others.size(), 7u);
}

TEST(HistoryPageETag, IfNoneMatchUsesTheWeakComparison) {
  const std::string etag = "\"hp-0123\"";
  EXPECT_TRUE(HistoryPageMatches("\"hp-0123\"", etag));
  EXPECT_TRUE(HistoryPageMatches("W/\"hp-0123\"", etag));
  EXPECT_TRUE(HistoryPageMatches("\"x\", \"hp-0123\"", etag));
  EXPECT_TRUE(HistoryPageMatches("*", etag));
  EXPECT_FALSE(HistoryPageMatches("\"hp-0124\"", etag));
  EXPECT_FALSE(HistoryPageMatches("hp-0123", etag));
}

v1::HistoryResponse Read(std::initializer_list<int64_t> seqs, v1::Checkpoint head) {
  v1::HistoryResponse response;
  for (int64_t seq : seqs) {
    v1::Document* document = response.add_documents();
    document->set_seq(seq);
    document->set_collection("messages");
    document->set_id(absl::StrCat("d", seq));
    document->set_json(absl::StrCat(R"({"id":"d)", seq, R"("})"));
  }
  *response.mutable_head() = std::move(head);
  return response;
}

TEST(HistoryPageBody, HoldsTheBlockAndLinksThePageOfTheNextOlderDocument) {
  // Read with before = 201, limit 101: 150..101 are the block's, 42 is older.
  std::string body = EncodeHistoryPageBody(Read({150, 120, 101, 42, 7}, Head(300, "e1", 2)),
                                           "lobby", Page(101, "e1", 2), "messages");
  EXPECT_EQ(body,
            R"({"documents":[{"id":"d150"},{"id":"d120"},{"id":"d101"}],)"
            R"("next":{"seq":101,"epoch":"e1"},)"
            R"("older":"/v1/rooms/lobby/history/pages/e1/2/1-100?collection=messages"})");
  // The oldest page; across collections each document names its own.
  body = EncodeHistoryPageBody(Read({9}, Head(300)), "lobby", Page(1), "");
  EXPECT_EQ(body, R"({"documents":[{"_collection":"messages","id":"d9"}],"next":null,"older":null})");
  // A page of an old compaction links to the current one's pages.
  body = EncodeHistoryPageBody(Read({250}, Head(900, "e1", 60)), "r", Page(301, "e1", 0), "");
  EXPECT_EQ(body, R"({"documents":[],"next":{"seq":301,"epoch":"e1"},)"
                  R"("older":"/v1/rooms/r/history/pages/e1/60/201-300"})");
}

// ------------------------------------------------------------ over HTTP

std::string Messages(int first, int count) {
  std::string body = "[";
  for (int i = first; i < first + count; ++i) {
    if (i > first) body += ',';
    absl::StrAppend(&body, R"({"id":"m)", i, R"(","timestamp":)", NowMs(), R"(,"ciphertext":"c)", i,
                    R"("})");
  }
  return body + "]";
}

std::string StringMember(const std::string& body, const char* member) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  std::string_view value;
  if (root[member].get_string().get(value)) return "";
  return std::string(value);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

class HistoryPagesHttpTest : public ::testing::Test {
 protected:
  void Start(const std::function<void(NodeConfig&)>& configure = {}) {
    node_ = StartTestNode(configure);
  }
  HttpResponse Get(const std::string& target, const Headers& headers = {}) {
    return Http(node_->http_port(), "GET", target, "", headers);
  }
  void PushMessages(const std::string& room, int first, int count, const Headers& headers = {}) {
    HttpResponse pushed =
        Http(node_->http_port(), "POST",
             absl::StrCat("/v1/rooms/", room, "/replicate/push?collection=messages"),
             Messages(first, count), headers);
    ASSERT_EQ(pushed.status, 200) << pushed.body;
  }
  std::unique_ptr<Node> node_;
};

TEST_F(HistoryPagesHttpTest, HistoryLinksCacheablePagesThatWalkTheRoom) {
  Start();
  PushMessages("walk", 0, 250);  // seqs 1..250
  HttpResponse head = Get("/v1/rooms/walk/history?collection=messages&limit=20");
  ASSERT_EQ(head.status, 200) << head.body;
  EXPECT_EQ(head.Header("cache-control"), "no-store");
  std::string url = StringMember(head.body, "older");
  ASSERT_FALSE(url.empty()) << head.body;
  // 250..231 came with /history; the head's block 201-300 is still open.
  EXPECT_NE(url.find("/0/201-300?collection=messages"), std::string::npos) << url;
  std::set<std::string> ids;
  for (const std::string& id : DocumentIds(head.body)) ids.insert(id);
  std::vector<std::string> cache_controls;
  while (!url.empty()) {
    HttpResponse page = Get(url);
    ASSERT_EQ(page.status, 200) << url << " " << page.body;
    cache_controls.push_back(page.Header("cache-control"));
    for (const std::string& id : DocumentIds(page.body)) ids.insert(id);
    if (page.Header("cache-control") != "no-store") {
      EXPECT_EQ(page.Header("etag").substr(0, 4), "\"hp-");
      EXPECT_EQ(page.Header("vary"), "Origin");
    } else {
      EXPECT_EQ(page.Header("etag"), "");
    }
    url = StringMember(page.body, "older");
  }
  EXPECT_EQ(cache_controls,
            (std::vector<std::string>{"no-store", "public, max-age=86400, immutable",
                                      "public, max-age=86400, immutable"}));
  EXPECT_EQ(ids.size(), 250u);
}

TEST_F(HistoryPagesHttpTest, IfNoneMatchIs304AndAChangedPageGetsAnotherETag) {
  Start();
  PushMessages("etag", 0, 100);
  HttpResponse any = Get("/v1/rooms/etag/history?limit=1");
  std::string url = StringMember(any.body, "older");
  ASSERT_NE(url.find("/1-100"), std::string::npos) << any.body;
  HttpResponse page = Get(url);
  ASSERT_EQ(page.status, 200);
  const std::string etag = page.Header("etag");
  HttpResponse again = Get(url, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_EQ(again.body, "");
  EXPECT_EQ(again.Header("etag"), etag);
  EXPECT_EQ(again.Header("cache-control"), "public, max-age=86400, immutable");
  EXPECT_EQ(Get(url, {{"If-None-Match", "\"other\""}}).status, 200);
  // m5 written again moves to seq 101: the block loses it, so its body and
  // ETag change, and the old ETag no longer matches.
  PushMessages("etag", 5, 1);
  HttpResponse changed = Get(url, {{"If-None-Match", etag}});
  ASSERT_EQ(changed.status, 200);
  EXPECT_NE(changed.Header("etag"), etag);
  EXPECT_EQ(DocumentIds(changed.body).size(), 99u);
}

TEST_F(HistoryPagesHttpTest, BadPagesAre400AndOtherEpochs404NeverCached) {
  Start();
  PushMessages("bad", 0, 3);
  for (const char* target : {"/v1/rooms/bad/history/pages/e/0/1-200",
                             "/v1/rooms/bad/history/pages/e/0/100-1",
                             "/v1/rooms/bad/history/pages/e/0/5-104",
                             "/v1/rooms/bad/history/pages/e/x/1-100",
                             "/v1/rooms/bad/history/pages/e/0/1-100?collection=Bad"}) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_EQ(ErrorCode(response.body), "invalid_argument") << target;
    EXPECT_EQ(response.Header("cache-control"), "no-store") << target;
  }
  HttpResponse other = Get("/v1/rooms/bad/history/pages/another-epoch/0/1-100");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(ErrorCode(other.body), "not_found");
  EXPECT_EQ(other.Header("cache-control"), "no-store");
  EXPECT_EQ(Http(node_->http_port(), "POST", "/v1/rooms/bad/history/pages/e/0/1-100").status, 405);
}

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-test-secret";

void WithAuth(NodeConfig& config, const std::string& secret_file) {
  JwtConfig jwt;
  jwt.hs256_secret_file = secret_file;
  config.gateway.jwt = jwt;
  config.room.jwt = jwt;
}

TEST_F(HistoryPagesHttpTest, WithAuthPagesArePrivateUnlessPublicHistoryCache) {
  for (bool public_cache : {false, true}) {
    ScratchDir scratch;
    std::string secret_file = scratch.Write("hs256.secret", kSecret);
    Start([&](NodeConfig& config) {
      WithAuth(config, secret_file);
      config.gateway.public_history_cache = public_cache;
    });
    Headers bearer = {{"Authorization",
                       "Bearer " + SignHs256(kSecret, Header("HS256"),
                                             Claims(absl::Now() + absl::Hours(1), R"(["priv"])",
                                                    "read write"))}};
    PushMessages("priv", 0, 100, bearer);
    std::string url = StringMember(Get("/v1/rooms/priv/history?limit=1", bearer).body, "older");
    ASSERT_FALSE(url.empty());
    EXPECT_EQ(Get(url).status, 401);  // the gateway still checks every request it sees
    HttpResponse page = Get(url, bearer);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.Header("cache-control"), public_cache ? "public, max-age=86400, immutable"
                                                         : "private, max-age=86400, immutable");
    node_.reset();
  }
}

}  // namespace
}  // namespace roomsync::testing

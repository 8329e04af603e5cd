// The web root (--web) end to end: a real node serving a temp directory,
// real sockets; plus the path rules and the page policy on their own.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/content_security_policy.h"
#include "gateway/routes.h"
#include "gateway/static_files.h"
#include "gateway/static_path.h"
#include "tests/gateway/gateway_test_node.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {
namespace fs = std::filesystem;

constexpr char kImportMap[] =
    R"({"imports":{"@roomsync/client":"/lib/roomsync/index.js"}})";
// printf '%s' "$kImportMap" | openssl dgst -sha256 -binary | base64
constexpr char kImportMapHash[] = "sha256-7AvoH8aulTJRxTq1KF77hXnnsbo3X4TryV+ICxeBZz0=";

void WriteFile(const std::string& path, std::string_view content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

// The JSON error bodies, compared whole (ErrorCode() would parse a file's
// bytes when a refusal fails).
constexpr char kNoSuchFile[] = R"({"error":{"code":"not_found","message":"no such file"}})";
constexpr char kMethodNotAllowed[] =
    R"({"error":{"code":"method_not_allowed","message":"method not allowed"}})";
constexpr char kNoSuchEndpoint[] = R"({"error":{"code":"not_found","message":"no such endpoint"}})";

std::string IndexHtml() {
  return absl::StrCat("<!doctype html><title>root</title><script type=\"importmap\">", kImportMap,
                      "</script><script type=\"module\" src=\"app.js\"></script>");
}

// The layout: <outer>/secret.txt next to the root <outer>/web, so that a
// traversal that worked would find a real file; a directory elsewhere that
// symlinks point to.
class GatewayStaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(Outer("secret.txt"), "outer secret");
    WriteFile(Root("index.html"), IndexHtml());
    WriteFile(Root("app.js"), "console.log('app');\n");
    WriteFile(Root("style.css"), "body { color: black; }\n");
    WriteFile(Root("sub/index.html"), "<!doctype html><title>sub</title>");
    WriteFile(Root("sub/nested/deep.js"), "export const deep = 1;\n");
    WriteFile(Root(".hidden"), "hidden");
    WriteFile(Root(".git/config"), "[core]");
    WriteFile(Root("sub/.env"), "TOKEN=x");
    fs::create_directories(Root("empty_dir"));
    WriteFile(Root("empty_dir/listed.js"), "x");
    WriteFile(elsewhere_.path() + "/passwd", "root:x:0:0");
    fs::create_symlink(elsewhere_.path(), Root("escape"));
    fs::create_symlink(elsewhere_.path() + "/passwd", Root("escape.txt"));
    fs::create_symlink(Outer("secret.txt"), Root("up.txt"));
    fs::create_symlink("app.js", Root("inside.js"));
    node_ = StartTestNode([&](NodeConfig& config) { config.gateway.web_root = Root(""); });
  }

  std::string Outer(const std::string& name) const { return outer_.path() + "/" + name; }
  std::string Root(const std::string& name) const { return outer_.path() + "/web/" + name; }
  HttpResponse Get(std::string_view target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Http(node_->http_port(), "GET", target, "", headers);
  }

  TempDir outer_{"roomsync-web"};
  TempDir elsewhere_{"roomsync-elsewhere"};
  std::unique_ptr<Node> node_;
};

TEST_F(GatewayStaticTest, ServesIndexHtmlAtTheRoot) {
  HttpResponse index = Get("/");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.body, IndexHtml());
  EXPECT_EQ(index.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(index.Header("cache-control"), "no-cache");
  std::string etag = index.Header("etag");
  EXPECT_TRUE(etag.size() > 2 && etag.front() == '"' && etag.back() == '"') << etag;
  EXPECT_EQ(Get("/index.html").body, IndexHtml());
}

TEST_F(GatewayStaticTest, HtmlAllowsExactlyItsImportMapByHash) {
  HttpResponse index = Get("/");
  EXPECT_EQ(index.Header("content-security-policy"),
            absl::StrCat("default-src 'self'; connect-src 'self'; script-src 'self' '",
                         kImportMapHash,
                         "'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                         "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"));
  // A page without an import map gets no hash; scripts get no policy.
  EXPECT_EQ(Get("/sub/").Header("content-security-policy"), BaseContentSecurityPolicy());
  EXPECT_EQ(Get("/app.js").Header("content-security-policy"), "");
}

TEST_F(GatewayStaticTest, ServesNestedFilesAndDirectoryIndexes) {
  HttpResponse deep = Get("/sub/nested/deep.js");
  ASSERT_EQ(deep.status, 200);
  EXPECT_EQ(deep.body, "export const deep = 1;\n");
  HttpResponse sub = Get("/sub/");
  ASSERT_EQ(sub.status, 200);
  EXPECT_EQ(sub.body, "<!doctype html><title>sub</title>");
  // Percent-encoded names are decoded once.
  EXPECT_EQ(Get("/sub/nested/d%65ep.js").body, "export const deep = 1;\n");
  // A symlink that stays inside the root is followed.
  EXPECT_EQ(Get("/inside.js").body, "console.log('app');\n");
}

TEST_F(GatewayStaticTest, ContentTypeFollowsTheExtension) {
  const std::pair<std::string, std::string> cases[] = {
      {"page.html", "text/html; charset=utf-8"},
      {"a.js", "text/javascript; charset=utf-8"},
      {"a.mjs", "text/javascript; charset=utf-8"},
      {"a.css", "text/css; charset=utf-8"},
      {"a.json", "application/json"},
      {"a.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"favicon.ico", "image/x-icon"},
      {"app.webmanifest", "application/manifest+json"},
      {"a.wasm", "application/wasm"},
      {"a.js.map", "application/json"},
      {"a.txt", "text/plain; charset=utf-8"},
      {"UPPER.JS", "text/javascript; charset=utf-8"},
      {"a.bin", "application/octet-stream"},
      {"LICENSE", "application/octet-stream"},
  };
  for (const auto& [name, type] : cases) {
    WriteFile(Root("types/" + name), "x");
    HttpResponse response = Get("/types/" + name);
    EXPECT_EQ(response.status, 200) << name;
    EXPECT_EQ(response.Header("content-type"), type) << name;
    EXPECT_EQ(response.Header("x-content-type-options"), "nosniff") << name;
  }
  // SVG documents may carry script: they get the policy, without hashes.
  EXPECT_EQ(Get("/types/a.svg").Header("content-security-policy"), BaseContentSecurityPolicy());
}

TEST_F(GatewayStaticTest, MissingFileIsAJson404) {
  HttpResponse missing = Get("/nope.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Header("content-type"), "application/json");
  EXPECT_EQ(missing.body, kNoSuchFile);
  EXPECT_EQ(Get("/sub/nested/nope/").status, 404);
}

TEST_F(GatewayStaticTest, TraversalAndSymlinksOutOfTheRootAre404) {
  const std::string targets[] = {
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E/secret.txt",
      "/sub/../../secret.txt",
      "/sub/%2e%2e/%2e%2e/secret.txt",
      "/%2e%2e%2fsecret.txt",
      "/..%2fsecret.txt",
      "/..%5csecret.txt",
      "/sub/..%5c..%5csecret.txt",
      "/../../../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/sub/../index.html",  // inside, but ".." is refused, not resolved
      "/./index.html",
      "/index.html%00.js",
      "/%00",
      "/a%zz",
      "/a%2",
      "//etc/passwd",
      "/escape/passwd",  // a symlinked directory that leads out
      "/escape.txt",     // a symlinked file that leads out
      "/up.txt",         // a symlink to the root's parent
  };
  for (const std::string& target : targets) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 404) << target << ": " << response.body;
    EXPECT_EQ(response.body, kNoSuchFile) << target;
  }
}

TEST_F(GatewayStaticTest, HiddenFilesAre404) {
  for (const char* target : {"/.hidden", "/.git/config", "/.git/", "/sub/.env", "/%2ehidden"}) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.body, kNoSuchFile) << target;
  }
}

TEST_F(GatewayStaticTest, ADirectoryIsNeverListed) {
  for (const char* target : {"/empty_dir/", "/empty_dir", "/sub", "/sub/nested/"}) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.body, kNoSuchFile) << target;
  }
}

TEST_F(GatewayStaticTest, OnlyRegularFilesAreServed) {
  ASSERT_EQ(::mkfifo(Root("pipe").c_str(), 0600), 0);
  absl::Time started = absl::Now();
  HttpResponse fifo = Get("/pipe");
  EXPECT_EQ(fifo.status, 404);
  EXPECT_LT(absl::Now() - started, absl::Seconds(5)) << "opening a FIFO must not wait for a writer";
}

TEST_F(GatewayStaticTest, OtherMethodsAre405WithAllow) {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    HttpResponse response = Http(node_->http_port(), method, "/index.html", "x");
    EXPECT_EQ(response.status, 405) << method;
    EXPECT_EQ(response.Header("allow"), "GET, HEAD") << method;
    EXPECT_EQ(response.body, kMethodNotAllowed) << method;
  }
  EXPECT_EQ(Http(node_->http_port(), "POST", "/nope", "x").status, 405);
}

TEST_F(GatewayStaticTest, MatchingIfNoneMatchIs304) {
  HttpResponse first = Get("/app.js");
  std::string etag = first.Header("etag");
  ASSERT_FALSE(etag.empty());

  HttpResponse again = Get("/app.js", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_EQ(again.body, "");
  EXPECT_EQ(again.Header("etag"), etag);
  EXPECT_EQ(again.Header("cache-control"), "no-cache");
  // RFC 9110: a 304's Content-Length, if any, is the 200's.
  EXPECT_EQ(again.Header("content-length"), std::to_string(first.body.size()));
  EXPECT_EQ(Get("/app.js", {{"If-None-Match", "W/" + etag}}).status, 304);
  EXPECT_EQ(Get("/app.js", {{"If-None-Match", absl::StrCat("\"other\", ", etag)}}).status, 304);
  EXPECT_EQ(Get("/app.js", {{"If-None-Match", "*"}}).status, 304);
  EXPECT_EQ(Get("/app.js", {{"If-None-Match", "\"other\""}}).status, 200);

  // A rewritten file has a new tag: the old one no longer matches.
  WriteFile(Root("app.js"), "console.log('app, version two');\n");
  HttpResponse changed = Get("/app.js", {{"If-None-Match", etag}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "console.log('app, version two');\n");
  EXPECT_NE(changed.Header("etag"), etag);
}

TEST_F(GatewayStaticTest, HeadHasTheHeadOfGetAndNoBody) {
  HttpResponse get = Get("/");
  // HEAD then GET on one keep-alive connection: a HEAD that sent a body
  // would make the second response unreadable.
  TestConnection connection(node_->http_port());
  ASSERT_TRUE(connection.Send(RequestText("HEAD", "/", "")));
  ASSERT_TRUE(connection.Send(RequestText("HEAD", "/nope.js", "")));
  ASSERT_TRUE(connection.Send(RequestText("GET", "/style.css", "")));
  HttpResponse head = connection.ReadStreamHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), std::to_string(IndexHtml().size()));
  EXPECT_EQ(head.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(head.Header("etag"), get.Header("etag"));
  EXPECT_EQ(head.Header("content-security-policy"), get.Header("content-security-policy"));
  HttpResponse missing = connection.ReadStreamHead();
  EXPECT_EQ(missing.status, 404);
  HttpResponse css = connection.ReadResponse();
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.body, "body { color: black; }\n");
}

TEST_F(GatewayStaticTest, KeepAliveServesSeveralFilesOnOneConnection) {
  TestConnection connection(node_->http_port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection.Send(RequestText("GET", "/app.js", "")));
    HttpResponse response = connection.ReadResponse();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "console.log('app');\n");
  }
  ASSERT_TRUE(connection.Send(RequestText("GET", "/healthz", "")));
  EXPECT_EQ(connection.ReadResponse().status, 200);
  EXPECT_FALSE(connection.closed());
}

TEST_F(GatewayStaticTest, FilesAboveTheBoundAreRefused) {
  auto sized = [&](const std::string& name, off_t bytes) {
    std::string path = Root(name);
    WriteFile(path, "");
    ASSERT_EQ(::truncate(path.c_str(), bytes), 0);  // sparse: no disk used
  };
  sized("at-bound.bin", StaticFiles::kMaxFileBytes);
  sized("too-large.bin", StaticFiles::kMaxFileBytes + 1);
  HttpResponse at_bound = Http(node_->http_port(), "HEAD", "/at-bound.bin");
  EXPECT_EQ(at_bound.status, 200);
  EXPECT_EQ(at_bound.Header("content-length"), std::to_string(StaticFiles::kMaxFileBytes));
  HttpResponse too_large = Get("/too-large.bin");
  EXPECT_EQ(too_large.status, 500);
  EXPECT_NE(too_large.body.find(R"({"error":{"code":"internal",)"), std::string::npos)
      << too_large.body;
}

TEST_F(GatewayStaticTest, ApiPathsStillWork) {
  HttpResponse pushed = Http(node_->http_port(), "POST", "/v1/rooms/web/replicate/push?collection=m",
                             absl::StrCat(R"([{"id":"a","timestamp":)", NowMs(), "}]"));
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  EXPECT_EQ(DocumentIds(Get("/api/room/web/replicate/pull").body), std::vector<std::string>{"a"});
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
  // Unknown paths of the API stay the API's, with its message.
  for (const char* target : {"/v1/nope", "/v1", "/api/room/web/nope", "/api"}) {
    HttpResponse unknown = Get(target);
    EXPECT_EQ(unknown.status, 404) << target;
    EXPECT_EQ(unknown.body, kNoSuchEndpoint) << target;
  }
  // Static requests are counted under one bounded label.
  ASSERT_EQ(Get("/app.js").status, 200);
  EXPECT_NE(Get("/metrics").body.find(R"(route="static",status="200")"), std::string::npos);
}

TEST(GatewayWithoutWebRoot, NonApiPathsAre404AsBefore) {
  std::unique_ptr<Node> node = StartTestNode();
  for (const char* target : {"/", "/index.html", "/app.js"}) {
    HttpResponse response = Http(node->http_port(), "GET", target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.body, kNoSuchEndpoint) << target;
  }
  EXPECT_EQ(Http(node->http_port(), "POST", "/index.html", "x").status, 404);
}

TEST(GatewayWebRootConfig, ARootThatIsNotADirectoryIsAStartupError) {
  TempDir dir("roomsync-web");
  WriteFile(dir.path() + "/file", "x");
  for (const std::string& root : {dir.path() + "/missing", dir.path() + "/file"}) {
    NodeConfig config;
    config.room.store_url = TempSqliteUrl();
    config.room.grpc_address = "";
    config.gateway.http_address = "127.0.0.1:0";
    config.gateway.web_root = root;
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(config);
    ASSERT_FALSE(node.ok()) << root;
    EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(node.status().message().find("--web"), absl::string_view::npos);
  }
}

TEST(StaticFilePath, MapsUrlPathsToFilesUnderTheRoot) {
  EXPECT_EQ(*StaticFilePath("/"), "index.html");
  EXPECT_EQ(*StaticFilePath("/a/b.js"), "a/b.js");
  EXPECT_EQ(*StaticFilePath("/docs/"), "docs/index.html");
  EXPECT_EQ(*StaticFilePath("/a%20b.txt"), "a b.txt");
  EXPECT_EQ(*StaticFilePath("/%252e%252e"), "%2e%2e") << "decoded once only";
  EXPECT_EQ(*StaticFilePath("/a..b"), "a..b") << "only segments starting with '.'";
  for (const char* refused : {"", "a", "/..", "/../x", "/a/../b", "/%2e%2e/x", "/%2E", "/.x",
                              "/a/.x/b", "/a//b", "/a\\b", "/a%5cb", "/a%00", "/%", "/%g0",
                              "/%0"}) {
    EXPECT_EQ(StaticFilePath(refused).status().code(), absl::StatusCode::kNotFound) << refused;
  }
}

TEST(MatchRoute, StaticOnlyOutsideTheApiAndOnlyWithAWebRoot) {
  EXPECT_EQ(MatchRoute("/", true).kind, RouteKind::kStatic);
  EXPECT_EQ(MatchRoute("/apiary.html", true).kind, RouteKind::kStatic);
  EXPECT_EQ(MatchRoute("/v1x", true).kind, RouteKind::kStatic);
  EXPECT_EQ(MatchRoute("/", false).kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/v1/rooms/r/history", true).kind, RouteKind::kHistory);
  EXPECT_EQ(MatchRoute("/v1/other", true).kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/api", true).kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/metrics", true).kind, RouteKind::kMetrics);
}

TEST(ContentSecurityPolicy, HashesEachInlineImportMapAsTheBrowserReadsIt) {
  std::string page = absl::StrCat("<SCRIPT TYPE=' ImportMap '>", kImportMap,
                                  "</script ><script>alert(1)</script>"
                                  "<script type=importmap src=/x.json></script>");
  EXPECT_EQ(InlineImportMapHashes(page), std::vector<std::string>{std::string(kImportMapHash)});
  // CR LF is LF to the browser's parser, and so to the hash.
  std::string crlf = "<script type=\"importmap\">{\r\n}</script>";
  std::string lf = "<script type=\"importmap\">{\n}</script>";
  EXPECT_EQ(InlineImportMapHashes(crlf), InlineImportMapHashes(lf));
  EXPECT_TRUE(InlineImportMapHashes("<script type=module>import 'x';</script>").empty());
  EXPECT_TRUE(InlineImportMapHashes("<scripts type=importmap>{}</scripts>").empty());
  EXPECT_EQ(HtmlContentSecurityPolicy("<p>no scripts</p>"), BaseContentSecurityPolicy());
}

}  // namespace
}  // namespace roomsync::testing

// The server never logs document contents or tokens (docs/security.md):
// everything the process writes to stderr during a busy session (pushes,
// pulls, streams with ?access_token=, refused tokens, refused documents)
// is captured and searched for the known secrets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/auth/test_token_signer.h"
#include "tests/gateway/gateway_test_node.h"

namespace roomsync::testing {
namespace {

constexpr char kSecret[] = "log-hygiene-secret-log-hygiene-secret-0123";
constexpr char kCiphertext[] = "CIPHERTEXT-e2e-7f3a9c";
constexpr char kPlaintextId[] = "PLAINTEXT-id-should-not-leak";

// Sends this process's stderr (fd 2) to a file while alive.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    FILE* file = std::fopen(path_.c_str(), "w");
    dup2(fileno(file), STDERR_FILENO);
    std::fclose(file);
  }
  std::string Stop() {
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string path_;
  int saved_ = -1;
};

TEST(GatewayLogHygiene, LogsHoldNoTokensAndNoDocumentContents) {
  ScratchDir scratch;
  std::string secret_file = scratch.Write("hs256.secret", kSecret);
  std::string token = SignHs256(kSecret, Header("HS256"),
                                Claims(absl::Now() + absl::Hours(1), R"(["room-a"])", "read write"));
  std::string reader = SignHs256(kSecret, Header("HS256"),
                                 Claims(absl::Now() + absl::Hours(1), R"(["room-a"])", "read"));
  std::string forged = SignHs256("a-different-secret-a-different-secret-0000", Header("HS256"),
                                 Claims(absl::Now() + absl::Hours(1), R"(["*"])", "read write"));
  std::string document = absl::StrCat(R"({"id":")", kPlaintextId, R"(","timestamp":)", NowMs(),
                                      R"(,"ciphertext":")", kCiphertext, R"("})");

  StderrCapture capture(scratch.path() + "/stderr.log");
  {
    std::unique_ptr<Node> node = StartTestNode([&](NodeConfig& config) {
      JwtConfig jwt;
      jwt.hs256_secret_file = secret_file;
      config.gateway.jwt = jwt;
      config.room.jwt = jwt;
    });
    int port = node->http_port();
    auto bearer = [](const std::string& t) {
      return std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + t}};
    };
    TestConnection stream(port);
    stream.Send(RequestText("GET", "/v1/rooms/room-a/replicate/pull/stream?access_token=" + token,
                            ""));
    EXPECT_EQ(stream.ReadStreamHead().status, 200);
    std::string push = "/v1/rooms/room-a/replicate/push?collection=messages";
    EXPECT_EQ(Http(port, "POST", push, "[" + document + "]", bearer(token)).status, 200);
    EXPECT_TRUE(stream.ReadUntil(kCiphertext, absl::Seconds(10)));
    EXPECT_EQ(Http(port, "GET", "/v1/rooms/room-a/replicate/pull?access_token=" + token).status, 200);
    // Refusals: their messages and logs must not quote what was refused.
    HttpResponse forged_response =
        Http(port, "GET", "/v1/rooms/room-a/replicate/pull?access_token=" + forged);
    EXPECT_EQ(forged_response.status, 401);
    EXPECT_EQ(forged_response.body.find(forged), std::string::npos);
    EXPECT_EQ(Http(port, "POST", push, "[" + document + "]", bearer(reader)).status, 403);
    std::string bad = absl::StrCat(R"([{"id":")", kPlaintextId, R"(","timestamp":"x","ciphertext":")",
                                   kCiphertext, R"("}])");
    HttpResponse refused = Http(port, "POST", push, bad, bearer(token));
    EXPECT_EQ(refused.status, 400);
    EXPECT_EQ(refused.body.find(kCiphertext), std::string::npos) << refused.body;
    node->Drain(absl::Seconds(1));
  }
  std::string log = capture.Stop();

  EXPECT_NE(log.find("\"http_request\""), std::string::npos) << "the capture saw the access log";
  for (const std::string& secret :
       {token, reader, forged, std::string(kCiphertext), std::string(kPlaintextId),
        std::string(kSecret)}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "leaked into the log: " << secret;
  }
  // The signature part alone (a token cut at a dot by some log line).
  EXPECT_EQ(log.find(token.substr(token.rfind('.') + 1)), std::string::npos);
  EXPECT_EQ(log.find("access_token"), std::string::npos);
}

}  // namespace
}  // namespace roomsync::testing

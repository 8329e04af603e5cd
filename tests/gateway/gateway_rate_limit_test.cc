// Rate limits and quotas: the token buckets on their own (injected time),
// then end to end on a node with auth, where one subject's flood is cut
// off with 429 while another subject keeps pushing.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/token_buckets.h"
#include "tests/auth/test_token_signer.h"
#include "tests/gateway/gateway_test_node.h"

namespace roomsync::testing {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

TEST(TokenBuckets, AllowsTheBurstThenRefillsAtTheRate) {
  TokenBuckets buckets(/*rate_per_second=*/10, /*burst=*/5, /*max_keys=*/100);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(buckets.Take("alice", 1, kStart).has_value());
  std::optional<absl::Duration> wait = buckets.Take("alice", 1, kStart);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, absl::Milliseconds(100));
  EXPECT_FALSE(buckets.Take("bob", 1, kStart).has_value()) << "keys are independent";
  EXPECT_FALSE(buckets.Take("alice", 1, kStart + absl::Milliseconds(100)).has_value());
}

TEST(TokenBuckets, ACostAboveTheBurstPassesOnAFullBucketThenOwes) {
  TokenBuckets buckets(10, 5, 100);
  EXPECT_FALSE(buckets.Take("alice", 50, kStart).has_value());
  // 45 tokens of debt: 5 s until the bucket holds 5 again... for one token,
  // (1 - (-45)) / 10 = 4.6 s.
  std::optional<absl::Duration> wait = buckets.Take("alice", 1, kStart);
  ASSERT_TRUE(wait.has_value());
  EXPECT_NEAR(absl::ToDoubleSeconds(*wait), 4.6, 1e-9);
}

TEST(TokenBuckets, ZeroRateIsUnlimitedAndStoresNothing) {
  TokenBuckets buckets(0, 0, 100);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(buckets.Take("k", 100, kStart).has_value());
  EXPECT_EQ(buckets.size(), 0u);
}

TEST(TokenBuckets, MemoryStaysBoundedUnderDistinctKeys) {
  TokenBuckets buckets(1, 1, /*max_keys=*/1000);
  for (int i = 0; i < 100000; ++i) {
    buckets.Take(absl::StrCat("10.0.", i / 256, ".", i % 256), 1,
                 kStart + absl::Microseconds(i));
  }
  EXPECT_LE(buckets.size(), 1000u);
  // Buckets that refilled completely are dropped first.
  TokenBuckets idle(1, 1, 10);
  for (int i = 0; i < 10; ++i) idle.Take(absl::StrCat("k", i), 1, kStart);
  idle.Take("late", 1, kStart + absl::Seconds(2));
  EXPECT_EQ(idle.size(), 1u);
}

TEST(StreamCounts, CapsOpenStreamsPerKeyAndForgetsClosedOnes) {
  StreamCounts counts(2);
  EXPECT_TRUE(counts.TryAcquire("alice"));
  EXPECT_TRUE(counts.TryAcquire("alice"));
  EXPECT_FALSE(counts.TryAcquire("alice"));
  EXPECT_TRUE(counts.TryAcquire("bob"));
  counts.Release("alice");
  EXPECT_TRUE(counts.TryAcquire("alice"));
}

constexpr char kSecret[] = "rate-limit-test-secret-rate-limit-test-secret";

class GatewayRateLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string secret_file = scratch_.Write("hs256.secret", kSecret);
    node_ = StartTestNode([&](NodeConfig& config) {
      JwtConfig jwt;
      jwt.hs256_secret_file = secret_file;
      config.gateway.jwt = jwt;
      config.gateway.rate_limits.push_documents_per_second_per_subject = 5;
      config.gateway.rate_limits.burst_seconds = 2;  // 10 documents at once
      config.gateway.rate_limits.max_streams_per_subject = 1;
    });
  }
  std::string TokenFor(const std::string& subject) {
    return SignHs256(kSecret, Header("HS256"),
                     absl::StrCat(R"({"sub":")", subject, R"(","exp":)",
                                  absl::ToUnixSeconds(absl::Now() + absl::Hours(1)),
                                  R"(,"rooms":["*"],"scope":"read write"})"));
  }
  HttpResponse PushOne(const std::string& token, int i) {
    return Http(node_->http_port(), "POST", "/v1/rooms/r/replicate/push?collection=messages",
                absl::StrCat(R"([{"id":"d)", i, R"(","timestamp":)", NowMs(), "}]"),
                {{"Authorization", "Bearer " + token}});
  }

  ScratchDir scratch_;
  std::unique_ptr<Node> node_;
};

TEST_F(GatewayRateLimitTest, FloodingSubjectGets429WhileAnotherKeepsPushing) {
  std::string alice = TokenFor("alice"), bob = TokenFor("bob");
  int alice_ok = 0, alice_limited = 0, bob_ok = 0;
  for (int i = 0; i < 40; ++i) {
    HttpResponse flood = PushOne(alice, i);
    if (flood.status == 200) ++alice_ok;
    if (flood.status == 429) {
      ++alice_limited;
      EXPECT_EQ(ErrorCode(flood.body), "rate_limited");
      EXPECT_GE(std::stoi(flood.Header("retry-after")), 1);
    }
    if (i % 8 == 0 && PushOne(bob, 1000 + i).status == 200) ++bob_ok;
  }
  EXPECT_GE(alice_ok, 10);  // the burst
  EXPECT_LT(alice_ok, 30);
  EXPECT_GT(alice_limited, 0);
  EXPECT_EQ(bob_ok, 5) << "another subject is not slowed down";
  std::string metrics = Http(node_->http_port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(roomsync_gateway_rate_limited_total{reason="push_documents_per_subject"})"),
            std::string::npos)
      << metrics;
}

TEST_F(GatewayRateLimitTest, SecondStreamOfASubjectIs429UntilTheFirstCloses) {
  std::string alice = TokenFor("alice");
  std::string target = "/v1/rooms/r/replicate/pull/stream?access_token=" + alice;
  auto first = std::make_unique<TestConnection>(node_->http_port());
  first->Send(RequestText("GET", target, ""));
  ASSERT_EQ(first->ReadStreamHead().status, 200);
  HttpResponse second = Http(node_->http_port(), "GET", target);
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(second.Header("retry-after"), "5");
  TestConnection bob(node_->http_port());
  bob.Send(RequestText("GET", "/v1/rooms/r/replicate/pull/stream?access_token=" + TokenFor("bob"),
                       ""));
  EXPECT_EQ(bob.ReadStreamHead().status, 200) << "the cap is per subject";
  first.reset();  // the client hangs up; its slot is freed with the session
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  int status = 429;
  while (status == 429 && absl::Now() < deadline) {
    TestConnection again(node_->http_port());
    again.Send(RequestText("GET", target, ""));
    status = again.ReadStreamHead(absl::Seconds(2)).status;
    if (status == 429) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace roomsync::testing

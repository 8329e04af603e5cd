// Every rule of JwtVerifier::Verify against tokens signed in the test.
#include "auth/jwt_verifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/base64url.h"
#include "tests/auth/test_token_signer.h"

namespace roomsync {
namespace {

using testing::Claims;
using testing::Header;
using testing::SignHs256;
using testing::SignWith;
using testing::TestKey;

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-test-secret";
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

class JwtVerifierTest : public ::testing::Test {
 protected:
  JwtVerifierTest()
      : ec_(TestKey::Generate("ES256", "ec-1")), ed_(TestKey::Generate("EdDSA", "ed-1")) {
    config_.hs256_secret_file = dir_.Write("secret", absl::StrCat(kSecret, "\n"));
    config_.jwks_file = dir_.Write("jwks.json", testing::JwksJson({&ec_, &ed_}));
  }

  std::unique_ptr<JwtVerifier> Make(const JwtConfig& config) {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create(config, [this] { return now_; });
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  absl::Status VerifyStatus(std::string_view token) {
    if (!verifier_) verifier_ = Make(config_);
    return verifier_->Verify(token).status();
  }

  // Refused with 401, and the message quotes no part of the token.
  void ExpectRefused(const std::string& token, std::string_view why_contains = "") {
    absl::Status status = VerifyStatus(token);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
    for (absl::string_view part : absl::StrSplit(token, '.')) {
      if (part.size() < 4) continue;
      EXPECT_EQ(status.message().find(part), absl::string_view::npos);
    }
    EXPECT_NE(status.message().find(std::string(why_contains)), absl::string_view::npos)
        << status;
  }

  std::string ValidClaims() { return Claims(kNow + absl::Hours(1)); }

  testing::ScratchDir dir_;
  TestKey ec_, ed_;
  JwtConfig config_;
  absl::Time now_ = kNow;
  std::unique_ptr<JwtVerifier> verifier_;
};

TEST_F(JwtVerifierTest, AcceptsHs256Es256AndEdDsaTokens) {
  for (const std::string& token :
       {SignHs256(kSecret, Header("HS256"), ValidClaims()),
        SignWith(ec_, Header("ES256", "ec-1"), ValidClaims()),
        SignWith(ed_, Header("EdDSA", "ed-1"), ValidClaims())}) {
    if (!verifier_) verifier_ = Make(config_);
    absl::StatusOr<Grant> grant = verifier_->Verify(token);
    ASSERT_TRUE(grant.ok()) << grant.status();
    EXPECT_EQ(grant->subject, "user-1");
    EXPECT_EQ(grant->rooms, std::vector<std::string>{"room-a"});
    EXPECT_TRUE(grant->can_write);
    EXPECT_EQ(grant->expires, kNow + absl::Hours(1));
  }
}

TEST_F(JwtVerifierTest, UsesTheOnlyKeyOfAnAlgorithmWhenTheTokenHasNoKid) {
  EXPECT_TRUE(VerifyStatus(SignWith(ec_, Header("ES256"), ValidClaims())).ok());
  EXPECT_TRUE(VerifyStatus(SignWith(ed_, Header("EdDSA"), ValidClaims())).ok());
}

TEST_F(JwtVerifierTest, RefusesATokenWithoutKidWhenSeveralKeysCouldMatch) {
  TestKey ec2 = TestKey::Generate("ES256", "ec-2");
  config_.jwks_file = dir_.Write("jwks.json", testing::JwksJson({&ec_, &ec2, &ed_}));
  ExpectRefused(SignWith(ec_, Header("ES256"), ValidClaims()), "several");
  EXPECT_TRUE(VerifyStatus(SignWith(ec2, Header("ES256", "ec-2"), ValidClaims())).ok());
}

TEST_F(JwtVerifierTest, RefusesAlgNoneAndUnknownAlgorithms) {
  std::string unsigned_input = testing::SigningInput(R"({"alg":"none"})", ValidClaims());
  ExpectRefused(unsigned_input + ".", "empty part");
  ExpectRefused(unsigned_input + "." + Base64UrlEncode("x"), "algorithm");
  for (const char* alg : {"none", "None", "HS512", "RS256", "ES384", "Ed25519"}) {
    ExpectRefused(SignHs256(kSecret, Header(alg), ValidClaims()), "algorithm");
  }
}

TEST_F(JwtVerifierTest, RefusesHs256TokenNamingAPublicKey) {
  // The classic confusion: HMAC with the public key bytes as the secret.
  ExpectRefused(SignHs256(ec_.PublicBytes(), Header("HS256", "ec-1"), ValidClaims()),
                "public key");
  ExpectRefused(SignHs256(ed_.PublicJwk(), Header("HS256", "ed-1"), ValidClaims()),
                "public key");
  // Even correctly HMAC-signed with our secret, such a token is a forgery.
  ExpectRefused(SignHs256(kSecret, Header("HS256", "ec-1"), ValidClaims()), "public key");
}

TEST_F(JwtVerifierTest, RefusesHs256SignedWithPublicKeyMaterialWithoutKid) {
  ExpectRefused(SignHs256(ec_.PublicBytes(), Header("HS256"), ValidClaims()), "signature");
  ExpectRefused(SignHs256(ed_.PublicJwk(), Header("HS256"), ValidClaims()), "signature");
}

TEST_F(JwtVerifierTest, RefusesHs256WhenOnlyPublicKeysAreConfigured) {
  config_.hs256_secret_file.clear();
  ExpectRefused(SignHs256(kSecret, Header("HS256"), ValidClaims()), "HS256");
}

TEST_F(JwtVerifierTest, RefusesPublicKeyAlgorithmsSignedWithTheHmacSecret) {
  std::string input = testing::SigningInput(Header("ES256", "ec-1"), ValidClaims());
  ExpectRefused(input + "." + Base64UrlEncode(testing::HmacSha256(kSecret, input)), "signature");
  // Without a JWKS, the secret is never tried for ES256/EdDSA.
  config_.jwks_file.clear();
  verifier_.reset();
  std::string no_jwks = testing::SigningInput(Header("EdDSA"), ValidClaims());
  ExpectRefused(no_jwks + "." + Base64UrlEncode(testing::HmacSha256(kSecret, no_jwks)),
                "no JWKS");
}

TEST_F(JwtVerifierTest, RefusesAKidThatNamesAKeyOfAnotherAlgorithm) {
  ExpectRefused(SignWith(ed_, Header("EdDSA", "ec-1"), ValidClaims()), "not an EdDSA key");
  ExpectRefused(SignWith(ec_, Header("ES256", "ed-1"), ValidClaims()), "not an ES256 key");
  ExpectRefused(SignWith(ec_, Header("ES256", "unknown"), ValidClaims()), "kid");
}

TEST_F(JwtVerifierTest, RefusesMalformedStructure) {
  std::string good = SignHs256(kSecret, Header("HS256"), ValidClaims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  ExpectRefused("", "empty");
  ExpectRefused(parts[0] + "." + parts[1], "three");
  ExpectRefused(good + ".", "three");
  ExpectRefused(good + "." + parts[2], "three");
  ExpectRefused(parts[0] + "." + parts[1] + ".", "empty part");
  ExpectRefused("." + parts[1] + "." + parts[2], "empty part");
  ExpectRefused(parts[0] + ".." + parts[2], "empty part");
  ExpectRefused(good + "=", "base64url");           // padding
  ExpectRefused(parts[0] + "=." + parts[1] + "." + parts[2], "base64url");
  ExpectRefused(parts[0] + "." + parts[1] + "." + parts[2].substr(1), "");
  ExpectRefused("Bearer " + good, "base64url");
  ExpectRefused(" " + good, "base64url");
}

TEST_F(JwtVerifierTest, RefusesMalformedJsonEvenWhenSigned) {
  ExpectRefused(SignHs256(kSecret, R"({"alg":"HS256")", ValidClaims()), "header");
  ExpectRefused(SignHs256(kSecret, R"(["HS256"])", ValidClaims()), "header");
  ExpectRefused(SignHs256(kSecret, Header("HS256"), "{\"sub\":"), "claims");
  ExpectRefused(SignHs256(kSecret, Header("HS256"), "[]"), "claims");
  std::string input = absl::StrCat(Base64UrlEncode(Header("HS256")), ".!!!!");
  ExpectRefused(input + "." + Base64UrlEncode(testing::HmacSha256(kSecret, input)), "payload");
}

TEST_F(JwtVerifierTest, RefusesWrongSignatures) {
  std::string good = SignWith(ec_, Header("ES256", "ec-1"), ValidClaims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  std::string signature = *Base64UrlDecode(parts[2]);
  signature[10] ^= 1;
  ExpectRefused(parts[0] + "." + parts[1] + "." + Base64UrlEncode(signature), "signature");
  // Same kid, another private key.
  TestKey impostor = TestKey::Generate("ES256", "ec-1");
  ExpectRefused(SignWith(impostor, Header("ES256", "ec-1"), ValidClaims()), "signature");
  // Payload swapped under a valid signature (rooms widened to "*").
  std::string widened = Base64UrlEncode(Claims(kNow + absl::Hours(1), R"(["*"])"));
  ExpectRefused(parts[0] + "." + widened + "." + parts[2], "signature");
  ExpectRefused(SignHs256(std::string(kSecret) + "x", Header("HS256"), ValidClaims()),
                "signature");
  ExpectRefused(SignWith(ed_, Header("EdDSA", "ed-1"), ValidClaims()) + "AA", "");
  // r = 0 and s = 0 (a "psychic signature", CVE-2022-21449).
  ExpectRefused(parts[0] + "." + parts[1] + "." + Base64UrlEncode(std::string(64, '\0')),
                "signature");
}

TEST_F(JwtVerifierTest, RefusesTokensLongerThanTheLimit) {
  std::string many_rooms = R"(["r")";
  while (many_rooms.size() < 9000) many_rooms += R"(,"room-with-a-long-name")";
  many_rooms += "]";
  std::string token = SignHs256(kSecret, Header("HS256"), Claims(kNow + absl::Hours(1), many_rooms));
  ExpectRefused(token, "too long");
  config_.max_token_bytes = 64 * 1024;
  verifier_.reset();
  EXPECT_TRUE(VerifyStatus(token).ok());
}

TEST_F(JwtVerifierTest, AppliesLeewayToExpiry) {
  std::string token = SignHs256(kSecret, Header("HS256"), Claims(kNow));
  now_ = kNow + absl::Seconds(29);
  EXPECT_TRUE(VerifyStatus(token).ok());
  now_ = kNow + absl::Seconds(30);
  ExpectRefused(token, "expired");
  now_ = kNow + absl::Hours(5);
  ExpectRefused(token, "expired");
}

TEST_F(JwtVerifierTest, AppliesConfiguredLeeway) {
  config_.leeway = absl::ZeroDuration();
  std::string token = SignHs256(kSecret, Header("HS256"), Claims(kNow + absl::Seconds(1)));
  EXPECT_TRUE(VerifyStatus(token).ok());
  now_ = kNow + absl::Seconds(1);
  ExpectRefused(token, "expired");
}

TEST_F(JwtVerifierTest, RefusesTokensNotYetValidBeyondLeeway) {
  std::string soon = SignHs256(kSecret, Header("HS256"),
                               Claims(kNow + absl::Hours(1), R"(["a"])", "read",
                                      absl::StrCat(R"("nbf":)", absl::ToUnixSeconds(kNow) + 29)));
  EXPECT_TRUE(VerifyStatus(soon).ok());
  std::string later = SignHs256(kSecret, Header("HS256"),
                                Claims(kNow + absl::Hours(1), R"(["a"])", "read",
                                       absl::StrCat(R"("nbf":)", absl::ToUnixSeconds(kNow) + 31)));
  ExpectRefused(later, "nbf");
  now_ = kNow + absl::Seconds(2);
  EXPECT_TRUE(VerifyStatus(later).ok());
}

TEST_F(JwtVerifierTest, RefusesTokensWithoutExp) {
  ExpectRefused(SignHs256(kSecret, Header("HS256"), R"({"sub":"u","rooms":["a"]})"), "exp");
}

TEST_F(JwtVerifierTest, ChecksIssuerAndAudienceWhenConfigured) {
  auto token = [&](std::string_view extra) {
    return SignHs256(kSecret, Header("HS256"),
                     Claims(kNow + absl::Hours(1), R"(["a"])", "read", extra));
  };
  // Not configured: not checked.
  EXPECT_TRUE(VerifyStatus(token(R"("iss":"other","aud":"other")")).ok());
  config_.issuer = "https://issuer.example";
  config_.audience = "roomsync";
  verifier_.reset();
  EXPECT_TRUE(VerifyStatus(token(R"("iss":"https://issuer.example","aud":"roomsync")")).ok());
  EXPECT_TRUE(
      VerifyStatus(token(R"("iss":"https://issuer.example","aud":["x","roomsync"])")).ok());
  ExpectRefused(token(R"("iss":"https://evil.example","aud":"roomsync")"), "issuer");
  ExpectRefused(token(R"("aud":"roomsync")"), "issuer");
  ExpectRefused(token(R"("iss":"https://issuer.example","aud":"roomsync2")"), "audience");
  ExpectRefused(token(R"("iss":"https://issuer.example","aud":["x"])"), "audience");
  ExpectRefused(token(R"("iss":"https://issuer.example")"), "audience");
}

TEST_F(JwtVerifierTest, GrantsFeedAuthorize) {
  auto grant_for = [&](std::string_view rooms, std::string_view scope) {
    absl::StatusOr<Grant> grant =
        Make(config_)->Verify(SignHs256(kSecret, Header("HS256"),
                                        Claims(kNow + absl::Hours(1), rooms, scope)));
    EXPECT_TRUE(grant.ok()) << grant.status();
    return grant.ok() ? *grant : Grant{};
  };
  Grant reader = grant_for(R"(["room-a","team-*"])", "read");
  EXPECT_TRUE(Authorize(reader, "room-a", false).ok());
  EXPECT_TRUE(Authorize(reader, "team-42", false).ok());
  EXPECT_EQ(Authorize(reader, "room-b", false).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(reader, "room-a", true).code(), absl::StatusCode::kPermissionDenied);
  Grant writer = grant_for(R"(["room-a"])", "read write");
  EXPECT_TRUE(Authorize(writer, "room-a", true).ok());
  EXPECT_EQ(Authorize(writer, "room-ab", true).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(JwtVerifierTest, CreateRefusesMissingOrWeakConfiguration) {
  EXPECT_EQ(JwtVerifier::Create(JwtConfig{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  JwtConfig short_secret;
  short_secret.hs256_secret_file = dir_.Write("short", "too-short\n");
  EXPECT_EQ(JwtVerifier::Create(short_secret).status().code(),
            absl::StatusCode::kInvalidArgument);
  JwtConfig missing;
  missing.jwks_file = dir_.path() + "/absent.json";
  EXPECT_EQ(JwtVerifier::Create(missing).status().code(), absl::StatusCode::kInvalidArgument);
  JwtConfig broken;
  broken.jwks_file = dir_.Write("broken.json", R"({"keys":[{"kty":"EC","crv":"P-256"}]})");
  EXPECT_EQ(JwtVerifier::Create(broken).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JwtVerifierTest, VerifiesFromManyThreadsAtOnce) {
  verifier_ = Make(config_);
  std::vector<std::string> tokens = {
      SignHs256(kSecret, Header("HS256"), ValidClaims()),
      SignWith(ec_, Header("ES256", "ec-1"), ValidClaims()),
      SignWith(ed_, Header("EdDSA", "ed-1"), ValidClaims()),
      SignHs256(kSecret, Header("none"), ValidClaims())};
  std::atomic<int> accepted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        (verifier_->Verify(tokens[i % tokens.size()]).ok() ? accepted : refused)++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), 600);
  EXPECT_EQ(refused.load(), 200);
}

}  // namespace
}  // namespace roomsync

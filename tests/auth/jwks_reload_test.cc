// Key rotation: the JWKS file is rewritten while the verifier runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "auth/base64url.h"
#include "auth/jwks_file.h"
#include "auth/jwt_verifier.h"
#include "tests/auth/test_token_signer.h"

namespace roomsync {
namespace {

using testing::Claims;
using testing::Header;
using testing::SignWith;
using testing::TestKey;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

class JwksReloadTest : public ::testing::Test {
 protected:
  JwksReloadTest()
      : old_key_(TestKey::Generate("ES256", "2024-old")),
        new_key_(TestKey::Generate("EdDSA", "2025-new")) {
    config_.jwks_file = dir_.Write("jwks.json", testing::JwksJson({&old_key_}));
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create(config_, [this] { return now_; });
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  // Tokens stay valid for a day, far beyond every clock step below.
  std::string OldToken() {
    return SignWith(old_key_, Header("ES256", "2024-old"), Claims(kStart + absl::Hours(24)));
  }
  std::string NewToken() {
    return SignWith(new_key_, Header("EdDSA", "2025-new"), Claims(kStart + absl::Hours(24)));
  }
  bool Accepts(const std::string& token) { return verifier_->Verify(token).ok(); }

  testing::ScratchDir dir_;
  TestKey old_key_, new_key_;
  JwtConfig config_;
  absl::Time now_ = kStart;
  std::unique_ptr<JwtVerifier> verifier_;
};

TEST_F(JwksReloadTest, AcceptsANewKidAfterTheFileIsRewritten) {
  EXPECT_TRUE(Accepts(OldToken()));
  EXPECT_FALSE(Accepts(NewToken()));
  dir_.Write("jwks.json", testing::JwksJson({&old_key_, &new_key_}));
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(NewToken()));
  EXPECT_TRUE(Accepts(OldToken()));
}

TEST_F(JwksReloadTest, RefusesARemovedKidAfterReload) {
  dir_.Write("jwks.json", testing::JwksJson({&new_key_}));
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(NewToken()));
  absl::Status refused = verifier_->Verify(OldToken()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(JwksReloadTest, ChecksTheFileAtMostOncePerSecond) {
  EXPECT_TRUE(Accepts(OldToken()));
  dir_.Write("jwks.json", testing::JwksJson({&new_key_}));
  now_ += absl::Milliseconds(500);
  EXPECT_TRUE(Accepts(OldToken())) << "re-read before the check interval";
  EXPECT_FALSE(Accepts(NewToken()));
  now_ += absl::Milliseconds(600);
  EXPECT_TRUE(Accepts(NewToken()));
  EXPECT_FALSE(Accepts(OldToken()));
}

TEST_F(JwksReloadTest, KeepsThePreviousKeysWhileTheFileIsBroken) {
  dir_.Write("jwks.json", R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"short"}]})");
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(OldToken()));
  std::filesystem::remove(config_.jwks_file);
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(OldToken()));
  dir_.Write("jwks.json", testing::JwksJson({&new_key_}));
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(NewToken()));
  EXPECT_FALSE(Accepts(OldToken()));
}

TEST_F(JwksReloadTest, NoticesAnInPlaceRewrite) {
  // Operators do not always rename; truncate-and-write changes size/mtime.
  {
    std::ofstream out(config_.jwks_file, std::ios::trunc);
    out << testing::JwksJson({&old_key_, &new_key_});
  }
  now_ += absl::Seconds(2);
  EXPECT_TRUE(Accepts(NewToken()));
}

TEST(JwksFile, RejectsPrivateKeysDuplicateKidsAndContradictoryAlg) {
  testing::ScratchDir dir;
  TestKey key = TestKey::Generate("EdDSA", "k");
  std::string jwk = key.PublicJwk();
  std::string with_d = jwk.substr(0, jwk.size() - 1) + R"(,"d":"AAAA"})";
  std::string with_alg = jwk.substr(0, jwk.size() - 1) + R"(,"alg":"ES256"})";
  for (const std::string& contents :
       {"{\"keys\":[" + with_d + "]}", "{\"keys\":[" + jwk + "," + jwk + "]}",
        "{\"keys\":[" + with_alg + "]}", std::string(R"({"keys":{}})"), std::string("[]")}) {
    EXPECT_EQ(JwksFile::Open(dir.Write("jwks.json", contents), RealJwtClock()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << contents;
  }
}

TEST(JwksFile, SkipsKeyTypesItDoesNotUse) {
  testing::ScratchDir dir;
  TestKey key = TestKey::Generate("ES256", "ec");
  std::string contents = R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"rsa"},)"
                         R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"},)" +
                         key.PublicJwk() + "]}";
  absl::StatusOr<std::unique_ptr<JwksFile>> file =
      JwksFile::Open(dir.Write("jwks.json", contents), RealJwtClock());
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->Keys()->keys().size(), 1u);
  EXPECT_EQ((*file)->Keys()->keys()[0].kid, "ec");
}

TEST(JwksFile, RejectsAPointOffTheCurve) {
  testing::ScratchDir dir;
  // x = y = 1 is not on P-256.
  std::string one = std::string(31, '\0') + '\1';
  std::string contents = R"({"keys":[{"kty":"EC","crv":"P-256","x":")" +
                         Base64UrlEncode(one) + R"(","y":")" + Base64UrlEncode(one) + R"("}]})";
  EXPECT_EQ(JwksFile::Open(dir.Write("jwks.json", contents), RealJwtClock()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace roomsync

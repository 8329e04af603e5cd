#include "tests/auth/test_token_signer.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "auth/base64url.h"
#include "base/string_view.h"

namespace roomsync::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(absl::StrCat("OpenSSL failed: ", what));
}

std::string BigNumParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  Check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
  std::string out(32, '\0');
  Check(BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32) == 32, "bn2binpad");
  BN_free(bn);
  return out;
}

}  // namespace

TestKey TestKey::Generate(std::string_view kind, std::string kid) {
  TestKey key;
  key.kind_ = std::string(kind);
  key.kid_ = std::move(kid);
  EVP_PKEY* raw = kind == "ES256" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  Check(raw != nullptr, "keygen");
  key.key_ = std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free);
  return key;
}

std::string TestKey::PublicBytes() const {
  if (kind_ == "ES256") {
    return BigNumParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X) +
           BigNumParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  }
  std::string out(32, '\0');
  size_t length = out.size();
  Check(EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(out.data()),
                                    &length) == 1 && length == 32,
        "raw public key");
  return out;
}

std::string TestKey::PublicJwk() const {
  std::string kid = kid_.empty() ? "" : absl::StrCat(R"(,"kid":")", kid_, R"(")");
  std::string bytes = PublicBytes();
  if (kind_ == "ES256") {
    return absl::StrCat(R"({"kty":"EC","crv":"P-256","use":"sig","x":")",
                        Base64UrlEncode(bytes.substr(0, 32)), R"(","y":")",
                        Base64UrlEncode(bytes.substr(32)), R"(")", kid, "}");
  }
  return absl::StrCat(R"({"kty":"OKP","crv":"Ed25519","x":")", Base64UrlEncode(bytes), R"(")",
                      kid, "}");
}

std::string TestKey::Sign(std::string_view signing_input) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* digest = kind_ == "ES256" ? EVP_sha256() : nullptr;
  Check(EVP_DigestSignInit(ctx.get(), nullptr, digest, nullptr, key_.get()) == 1, "sign init");
  size_t length = 0;
  const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
  Check(EVP_DigestSign(ctx.get(), nullptr, &length, input, signing_input.size()) == 1, "sign");
  std::string signature(length, '\0');
  Check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       input, signing_input.size()) == 1,
        "sign");
  signature.resize(length);
  if (kind_ != "ES256") return signature;
  // DER SEQUENCE{r, s} -> JOSE r||s, each left-padded to 32 bytes.
  const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size()));
  Check(sig != nullptr, "d2i_ECDSA_SIG");
  std::string jose(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(jose.data());
  Check(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32,
        "r||s");
  ECDSA_SIG_free(sig);
  return jose;
}

std::string JwksJson(const std::vector<const TestKey*>& keys) {
  std::string out = R"({"keys":[)";
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", keys[i]->PublicJwk());
  }
  return out + "]}";
}

std::string SigningInput(std::string_view header_json, std::string_view payload_json) {
  return absl::StrCat(Base64UrlEncode(header_json), ".", Base64UrlEncode(payload_json));
}

std::string HmacSha256(std::string_view secret, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  Check(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
             &length) != nullptr,
        "HMAC");
  return std::string(reinterpret_cast<char*>(mac), length);
}

std::string SignHs256(std::string_view secret, std::string_view header_json,
                      std::string_view payload_json) {
  std::string input = SigningInput(header_json, payload_json);
  return absl::StrCat(input, ".", Base64UrlEncode(HmacSha256(secret, input)));
}

std::string SignWith(const TestKey& key, std::string_view header_json,
                     std::string_view payload_json) {
  std::string input = SigningInput(header_json, payload_json);
  return absl::StrCat(input, ".", Base64UrlEncode(key.Sign(input)));
}

std::string Header(std::string_view alg, std::string_view kid) {
  std::string kid_member = kid.empty() ? "" : absl::StrCat(R"(,"kid":")", ToAbsl(kid), R"(")");
  return absl::StrCat(R"({"alg":")", ToAbsl(alg), R"(","typ":"JWT")", kid_member, "}");
}

std::string Claims(absl::Time exp, std::string_view rooms_json, std::string_view scope,
                   std::string_view extra) {
  return absl::StrCat(R"({"sub":"user-1","exp":)", absl::ToUnixSeconds(exp), R"(,"rooms":)",
                      ToAbsl(rooms_json), R"(,"scope":")", ToAbsl(scope), R"(")",
                      extra.empty() ? "" : ",", ToAbsl(extra), "}");
}

ScratchDir::ScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp ? tmp : "/tmp", "/roomsync-auth-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string ScratchDir::Write(std::string_view name, std::string_view contents) const {
  std::string final_path = absl::StrCat(path_, "/", ToAbsl(name));
  std::string temp_path = final_path + ".tmp";
  {
    std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out) throw std::runtime_error("cannot write " + temp_path);
  }
  std::filesystem::rename(temp_path, final_path);
  return final_path;
}

}  // namespace roomsync::testing

#include "tools/roomsyncctl/token.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/base64url.h"
#include "auth/jwt_verifier.h"
#include "base/file.h"
#include "tools/roomsyncctl/export_format.h"

namespace roomsync::ctl {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct SigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

// The secret as the servers read it: trailing CR/LF stripped.
absl::StatusOr<std::string> ReadSecret(const std::string& path) {
  absl::StatusOr<std::string> secret = ReadNonEmptyFile(path, "--jwt_hs256_secret_file");
  if (!secret.ok()) return secret.status();
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
    secret->pop_back();
  }
  if (secret->size() < 32) {
    return absl::InvalidArgumentError("the HS256 secret must be at least 32 bytes");
  }
  return secret;
}

absl::StatusOr<std::unique_ptr<EVP_PKEY, PkeyFree>> ReadPrivateKey(const std::string& path,
                                                                   int want_type) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot open --private_key_file ", path));
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_PrivateKey(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (key == nullptr) {
    return absl::InvalidArgumentError("--private_key_file is not a PEM private key");
  }
  if (EVP_PKEY_base_id(key.get()) != want_type) {
    return absl::InvalidArgumentError("--private_key_file does not hold a key of --alg");
  }
  return key;
}

absl::StatusOr<std::string> Sign(const MintRequest& request, std::string_view input) {
  if (request.alg == JwsAlgorithm::kHs256) {
    absl::StatusOr<std::string> secret = ReadSecret(request.hs256_secret_file);
    if (!secret.ok()) return secret.status();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), secret->data(), static_cast<int>(secret->size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
             &size) == nullptr) {
      return absl::InternalError("HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(mac), size);
  }
  const bool ec = request.alg == JwsAlgorithm::kEs256;
  absl::StatusOr<std::unique_ptr<EVP_PKEY, PkeyFree>> key =
      ReadPrivateKey(request.private_key_file, ec ? EVP_PKEY_EC : EVP_PKEY_ED25519);
  if (!key.ok()) return key.status();
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, ec ? EVP_sha256() : nullptr, nullptr,
                         key->get()) != 1) {
    return absl::InternalError("cannot start signing");
  }
  size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()) != 1) {
    return absl::InternalError("cannot size the signature");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, data,
                     input.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  signature.resize(size);
  if (!ec) return signature;
  // OpenSSL gives ECDSA signatures in DER; JWS wants r || s, 32 bytes each
  // (RFC 7518 §3.4).
  const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(size)));
  if (sig == nullptr) return absl::InternalError("cannot read the ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  if (BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
      BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32) {
    return absl::InvalidArgumentError("--private_key_file is not a P-256 key");
  }
  return raw;
}

}  // namespace

absl::StatusOr<std::string> MintToken(const MintRequest& request) {
  if (request.subject.empty()) return absl::InvalidArgumentError("--sub is required");
  if (request.ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("--ttl must be positive");
  std::string header = absl::StrCat("{\"alg\":", JsonString(JwsAlgorithmName(request.alg)),
                                    ",\"typ\":\"JWT\"");
  if (!request.kid.empty()) absl::StrAppend(&header, ",\"kid\":", JsonString(request.kid));
  header += "}";
  std::string claims = absl::StrCat("{\"sub\":", JsonString(request.subject), ",\"exp\":",
                                    absl::ToUnixSeconds(request.now + request.ttl), ",\"iat\":",
                                    absl::ToUnixSeconds(request.now), ",\"rooms\":[");
  for (size_t i = 0; i < request.rooms.size(); ++i) {
    absl::StrAppend(&claims, i == 0 ? "" : ",", JsonString(request.rooms[i]));
  }
  absl::StrAppend(&claims, "]");
  if (!request.scope.empty()) absl::StrAppend(&claims, ",\"scope\":", JsonString(request.scope));
  if (!request.issuer.empty()) absl::StrAppend(&claims, ",\"iss\":", JsonString(request.issuer));
  if (!request.audience.empty()) {
    absl::StrAppend(&claims, ",\"aud\":", JsonString(request.audience));
  }
  claims += "}";
  const std::string input =
      absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(claims));
  absl::StatusOr<std::string> signature = Sign(request, input);
  if (!signature.ok()) return signature.status();
  return absl::StrCat(input, ".", Base64UrlEncode(*signature));
}

absl::StatusOr<InspectedToken> InspectToken(const std::string& token,
                                            const std::string& hs256_secret_file,
                                            const std::string& jwks_file,
                                            const std::string& issuer,
                                            const std::string& audience) {
  JwtConfig config;
  config.hs256_secret_file = hs256_secret_file;
  config.jwks_file = jwks_file;
  config.issuer = issuer;
  config.audience = audience;
  absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(config);
  if (!verifier.ok()) return verifier.status();
  absl::StatusOr<Grant> grant = (*verifier)->Verify(token);
  if (!grant.ok()) return grant.status();
  // Verified: decode the parts for display.
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return absl::InternalError("a verified token without three parts");
  absl::StatusOr<std::string> header_json = Base64UrlDecode(parts[0]);
  absl::StatusOr<std::string> claims_json = Base64UrlDecode(parts[1]);
  if (!header_json.ok() || !claims_json.ok()) return absl::InternalError("cannot decode the token");
  absl::StatusOr<JwtHeader> header = ParseJwtHeader(*header_json);
  if (!header.ok()) return header.status();
  absl::StatusOr<JwtClaims> claims = ParseJwtClaims(*claims_json);
  if (!claims.ok()) return claims.status();
  return InspectedToken{*std::move(header), *std::move(claims), *std::move(claims_json)};
}

}  // namespace roomsync::ctl

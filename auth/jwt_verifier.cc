#include "auth/jwt_verifier.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "auth/base64url.h"
#include "auth/jws_signature.h"
#include "auth/jwt_claims.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

// RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxSecretBytes = 64 * 1024;

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read HS256 secret file ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  std::string secret = contents.str();
  // Files written by `echo` or editors end with a newline that is not part
  // of the secret the issuer uses.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < kMinSecretBytes || secret.size() > kMaxSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HS256 secret in ", path, " must be ", kMinSecretBytes, "..", kMaxSecretBytes, " bytes"));
  }
  return secret;
}

absl::Status Refuse(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("invalid token: ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(const JwtConfig& config,
                                                                 JwtClock clock) {
  if (config.hs256_secret_file.empty() && config.jwks_file.empty()) {
    return absl::InvalidArgumentError(
        "JWT auth needs an HS256 secret file, a JWKS file, or both");
  }
  if (!clock) clock = RealJwtClock();
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(config, clock));
  if (!config.hs256_secret_file.empty()) {
    absl::StatusOr<std::string> secret = ReadSecretFile(config.hs256_secret_file);
    if (!secret.ok()) return secret.status();
    verifier->hs256_secret_ = *std::move(secret);
  }
  if (!config.jwks_file.empty()) {
    absl::StatusOr<std::unique_ptr<JwksFile>> jwks = JwksFile::Open(config.jwks_file, clock);
    if (!jwks.ok()) return jwks.status();
    verifier->jwks_ = *std::move(jwks);
  }
  return verifier;
}

absl::Status JwtVerifier::CheckSignature(std::string_view header_json,
                                         std::string_view signing_input,
                                         std::string_view signature) const {
  absl::StatusOr<JwtHeader> header = ParseJwtHeader(header_json);
  if (!header.ok()) return Refuse(header.status().message());
  std::shared_ptr<const JwkSet> keys = jwks_ ? jwks_->Keys() : nullptr;

  if (header->alg == JwsAlgorithm::kHs256) {
    if (hs256_secret_.empty()) return Refuse("HS256 tokens are not accepted here");
    // Algorithm confusion: a token naming a public key but claiming HS256
    // hopes we use that (public, known) key as an HMAC secret. We never
    // would, but a kid that names a public key is a forgery, so say so.
    if (!header->kid.empty() && keys && keys->HasKid(header->kid)) {
      return Refuse("HS256 token names a public key");
    }
    absl::Status verified = VerifyHs256(hs256_secret_, signing_input, signature);
    if (verified.code() == absl::StatusCode::kUnauthenticated) return Refuse(verified.message());
    return verified;
  }
  // ES256 / EdDSA: only ever a JWKS key of the matching type; the HMAC
  // secret is never a candidate.
  if (!keys) {
    return Refuse(absl::StrCat(ToAbsl(JwsAlgorithmName(header->alg)),
                               " tokens are not accepted here (no JWKS configured)"));
  }
  absl::StatusOr<const PublicJwk*> key = keys->Find(header->alg, header->kid);
  if (!key.ok()) return Refuse(key.status().message());
  absl::Status verified = VerifyWithPublicKey(**key, signing_input, signature);
  if (verified.code() == absl::StatusCode::kUnauthenticated) return Refuse(verified.message());
  return verified;
}

absl::StatusOr<Grant> JwtVerifier::Verify(std::string_view token) const {
  // Bound the work an unauthenticated caller can make us do.
  if (token.size() > config_.max_token_bytes) return Refuse("token is too long");
  if (token.empty()) return Refuse("token is empty");
  size_t first_dot = token.find('.');
  size_t second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos) {
    return Refuse("token is not three dot-separated parts (compact JWS)");
  }
  std::string_view header_b64 = token.substr(0, first_dot);
  std::string_view payload_b64 = token.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string_view signature_b64 = token.substr(second_dot + 1);
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return Refuse("token has an empty part (unsigned tokens are never accepted)");
  }
  absl::StatusOr<std::string> header_json = Base64UrlDecode(header_b64);
  if (!header_json.ok()) return Refuse("token header is not base64url");
  absl::StatusOr<std::string> signature = Base64UrlDecode(signature_b64);
  if (!signature.ok()) return Refuse("token signature is not base64url");

  // The signature covers the encoded header and payload exactly as sent.
  std::string_view signing_input = token.substr(0, second_dot);
  if (absl::Status checked = CheckSignature(*header_json, signing_input, *signature);
      !checked.ok()) {
    return checked;
  }

  // Only now, with the issuer's signature checked, read what it claims.
  absl::StatusOr<std::string> payload_json = Base64UrlDecode(payload_b64);
  if (!payload_json.ok()) return Refuse("token payload is not base64url");
  absl::StatusOr<JwtClaims> claims = ParseJwtClaims(*payload_json);
  if (!claims.ok()) return Refuse(claims.status().message());

  absl::Time now = clock_();
  if (now >= claims->expires + config_.leeway) return Refuse("token has expired");
  if (claims->not_before && now + config_.leeway < *claims->not_before) {
    return Refuse("token is not valid yet (nbf)");
  }
  if (!config_.issuer.empty() && claims->issuer != config_.issuer) {
    return Refuse("token issuer is not the configured one");
  }
  if (!config_.audience.empty()) {
    bool found = false;
    for (const std::string& audience : claims->audiences) found = found || audience == config_.audience;
    if (!found) return Refuse("token audience does not include the configured one");
  }
  return Grant{std::move(claims->subject), std::move(claims->rooms), claims->can_write,
               claims->expires, claims->admin};
}

}  // namespace roomsync

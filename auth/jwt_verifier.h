// Verifying the bearer tokens (JWTs) of PROTOCOL.md "Authentication and
// errors": HS256 with a shared secret, ES256 and EdDSA with public keys from
// a JWKS file that may change while the server runs. The gateway and the
// room service call Verify on every request, then Authorize per room.
//
//   absl::StatusOr<Grant> grant = verifier->Verify(token);   // 401 if not ok
//   if (!grant.ok()) return grant.status();
//   absl::Status allowed = Authorize(*grant, room, /*write=*/true);  // 403
#ifndef ROOMSYNC_AUTH_JWT_VERIFIER_H_
#define ROOMSYNC_AUTH_JWT_VERIFIER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/grant.h"
#include "auth/jwks_file.h"
#include "auth/jwt_clock.h"

namespace roomsync {

struct JwtConfig {
  // File holding the HS256 secret (trailing CR/LF stripped; at least 32
  // bytes, RFC 7518 §3.2). Empty: HS256 tokens are refused.
  std::string hs256_secret_file;
  // RFC 7517 JWKS file with the ES256/EdDSA public keys; re-read when it
  // changes. Empty: ES256 and EdDSA tokens are refused.
  std::string jwks_file;
  // When non-empty, "iss" must equal it / "aud" must contain it.
  std::string issuer;
  std::string audience;
  // Clock skew tolerated between the issuer and us, for "exp" and "nbf".
  absl::Duration leeway = absl::Seconds(30);
  // Longer tokens are refused before any decoding. 8 KiB holds hundreds of
  // room names and stays below common proxies' header limits.
  size_t max_token_bytes = 8 * 1024;
};

class JwtVerifier {
 public:
  // Loads the secret and/or the JWKS file. kInvalidArgument if neither is
  // configured, a file cannot be read, the secret is too short or the JWKS
  // is malformed. `clock` defaults to the real time.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(const JwtConfig& config,
                                                             JwtClock clock = {});

  // Checks `token` (compact JWS, without "Bearer ") and returns what it
  // grants. kUnauthenticated (HTTP 401) for every bad token: malformed,
  // unknown or "none" algorithm, algorithm/key mismatch, bad signature,
  // expired, not yet valid, wrong issuer or audience, bad claims. The
  // message says why and never quotes the token. kInternal only if OpenSSL
  // fails. Thread-safe.
  absl::StatusOr<Grant> Verify(std::string_view token) const;

 private:
  JwtVerifier(const JwtConfig& config, JwtClock clock) : config_(config), clock_(std::move(clock)) {}

  absl::Status CheckSignature(std::string_view header_json, std::string_view signing_input,
                              std::string_view signature) const;

  const JwtConfig config_;
  const JwtClock clock_;
  std::string hs256_secret_;        // empty: HS256 not configured
  std::unique_ptr<JwksFile> jwks_;  // null: no public keys configured
};

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWT_VERIFIER_H_

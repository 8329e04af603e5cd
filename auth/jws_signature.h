// Checking a JWS signature over "<header>.<payload>" (RFC 7515 §5.2 step 8).
// All three algorithms run on OpenSSL 3's EVP API; see jwk_set.cc for why
// no Debian JWT library is used. Thread-safe: keys are only read.
#ifndef ROOMSYNC_AUTH_JWS_SIGNATURE_H_
#define ROOMSYNC_AUTH_JWS_SIGNATURE_H_

#include <string_view>

#include "absl/status/status.h"
#include "auth/jwk_set.h"

namespace roomsync {

// HMAC-SHA256 of `signing_input` under `secret`, compared in constant time
// with `signature` (raw bytes, already base64url-decoded).
// kUnauthenticated on mismatch.
absl::Status VerifyHs256(std::string_view secret, std::string_view signing_input,
                         std::string_view signature);

// ES256 (`signature` is JOSE's fixed 64-byte r||s, RFC 7518 §3.4) or EdDSA
// (64 bytes, RFC 8037 §3.1), per `jwk.alg`. kUnauthenticated on mismatch
// or on a signature of the wrong shape.
absl::Status VerifyWithPublicKey(const PublicJwk& jwk, std::string_view signing_input,
                                 std::string_view signature);

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWS_SIGNATURE_H_

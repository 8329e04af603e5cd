// Reading a JWT's JOSE header and claims set (RFC 7519) into plain structs.
// Only shape is checked here; time, issuer and audience are judged by
// JwtVerifier against its config and clock. Thread-safe (one simdjson
// parser per thread).
#ifndef ROOMSYNC_AUTH_JWT_CLAIMS_H_
#define ROOMSYNC_AUTH_JWT_CLAIMS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/jws_algorithm.h"

namespace roomsync {

struct JwtHeader {
  JwsAlgorithm alg = JwsAlgorithm::kHs256;
  std::string kid;  // empty when absent
};

// `json` is the decoded header. kInvalidArgument if it is not a JSON
// object with unique members, "alg" is missing, "none" or unknown, "kid"
// is not a string, "typ" is neither JWT nor at+jwt, or "crit" is present
// (we implement no extensions, and RFC 7515 §4.1.11 says to refuse those
// we don't understand). Key-carrying headers ("jwk", "jku", "x5c", "x5u")
// are ignored: keys come only from configuration, never from the token.
absl::StatusOr<JwtHeader> ParseJwtHeader(std::string_view json);

struct JwtClaims {
  std::string subject;
  std::vector<std::string> rooms;
  bool can_write = false;
  bool admin = false;  // "scope" holds "admin" (the RoomAdmin API)
  absl::Time expires;
  std::optional<absl::Time> not_before;
  std::optional<std::string> issuer;
  std::vector<std::string> audiences;  // "aud" as a string or an array
};

// `json` is the decoded payload. Required: "sub" (non-empty string) and
// "exp" (a NumericDate: seconds since the epoch, integer or fraction).
// Optional: "nbf", "iss", "aud" (string or array of strings), "rooms"
// (array of non-empty strings; absent = no rooms), "scope" (space-separated
// words; "write" grants writing, "admin" the operators' API (RoomAdmin), unknown words are ignored, absent means
// read-only). kInvalidArgument when a claim has the wrong type.
absl::StatusOr<JwtClaims> ParseJwtClaims(std::string_view json);

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWT_CLAIMS_H_

// `roomsyncctl token mint|inspect`: the bearer JWTs of PROTOCOL.md, signed
// and verified with the same key files the servers use (an HS256 secret
// file, a JWKS file of public keys) plus, for ES256 and EdDSA, the PEM
// private key that the JWKS publishes. Verification is auth/'s
// JwtVerifier, so inspect accepts exactly what the servers accept.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_TOKEN_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_TOKEN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/jws_algorithm.h"
#include "auth/jwt_claims.h"

namespace roomsync::ctl {

struct MintRequest {
  JwsAlgorithm alg = JwsAlgorithm::kHs256;
  std::string hs256_secret_file;  // HS256
  std::string private_key_file;   // ES256 (P-256) or EdDSA (Ed25519), PEM
  std::string kid;                // "kid" header; empty = none
  std::string subject;
  std::vector<std::string> rooms;
  std::string scope;  // space-separated words: "read", "write", "admin"
  absl::Duration ttl = absl::Hours(1);
  std::string issuer;
  std::string audience;
  absl::Time now = absl::Now();
};

// The compact JWS. kInvalidArgument for a bad request or key file.
absl::StatusOr<std::string> MintToken(const MintRequest& request);

struct InspectedToken {
  JwtHeader header;
  JwtClaims claims;
  std::string claims_json;  // the payload as signed
};

// Verifies `token` as the servers do (JwtVerifier with these files and
// issuer/audience), then decodes it. kUnauthenticated with the reason
// when it does not verify.
absl::StatusOr<InspectedToken> InspectToken(const std::string& token,
                                            const std::string& hs256_secret_file,
                                            const std::string& jwks_file,
                                            const std::string& issuer,
                                            const std::string& audience);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_TOKEN_H_

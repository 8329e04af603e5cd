// The JWS "alg" values roomsync accepts (RFC 7518 §3.1, RFC 8037 §3.1).
// Everything else, "none" first of all, is refused before any key is
// looked at.
#ifndef ROOMSYNC_AUTH_JWS_ALGORITHM_H_
#define ROOMSYNC_AUTH_JWS_ALGORITHM_H_

#include <optional>
#include <string_view>

namespace roomsync {

enum class JwsAlgorithm {
  kHs256,  // HMAC-SHA256 with the shared secret
  kEs256,  // ECDSA P-256 + SHA-256 with a JWKS "EC"/"P-256" key
  kEdDsa,  // Ed25519 with a JWKS "OKP"/"Ed25519" key
};

// Exact, case-sensitive match as RFC 7515 §4.1.1 requires ("hs256" and
// "None" are unknown, hence refused).
inline std::optional<JwsAlgorithm> ParseJwsAlgorithm(std::string_view name) {
  if (name == "HS256") return JwsAlgorithm::kHs256;
  if (name == "ES256") return JwsAlgorithm::kEs256;
  if (name == "EdDSA") return JwsAlgorithm::kEdDsa;
  return std::nullopt;
}

inline std::string_view JwsAlgorithmName(JwsAlgorithm alg) {
  switch (alg) {
    case JwsAlgorithm::kHs256: return "HS256";
    case JwsAlgorithm::kEs256: return "ES256";
    case JwsAlgorithm::kEdDsa: return "EdDSA";
  }
  return "?";
}

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWS_ALGORITHM_H_

// A parsed JWKS document (RFC 7517): the public keys that may sign tokens,
// each bound to exactly one algorithm by its key type, so a key can never
// be used with an algorithm it was not made for. Immutable once built, so
// any number of threads may read one JwkSet.
#ifndef ROOMSYNC_AUTH_JWK_SET_H_
#define ROOMSYNC_AUTH_JWK_SET_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "absl/status/statusor.h"
#include "auth/jws_algorithm.h"

namespace roomsync {

struct PublicJwk {
  std::string kid;  // empty when the JWK has none
  JwsAlgorithm alg = JwsAlgorithm::kEs256;  // kEs256 or kEdDsa, never kHs256
  std::shared_ptr<EVP_PKEY> key;            // public key only
};

class JwkSet {
 public:
  JwkSet() = default;
  explicit JwkSet(std::vector<PublicJwk> keys) : keys_(std::move(keys)) {}

  // The key a token with header `alg`/`kid` must verify against.
  // kid given: the key with that kid, and it must be of `alg`'s type
  // (otherwise a token could pick an algorithm for someone else's key).
  // No kid: the only key of that algorithm; none or several is an error.
  // kNotFound / kFailedPrecondition with a message safe to show a client.
  absl::StatusOr<const PublicJwk*> Find(JwsAlgorithm alg, std::string_view kid) const;

  // True if some key has this kid (of any algorithm).
  bool HasKid(std::string_view kid) const;

  const std::vector<PublicJwk>& keys() const { return keys_; }

 private:
  std::vector<PublicJwk> keys_;
};

// Parses a JWKS JSON document {"keys": [...]}. Keys of other types (RSA,
// other curves) and keys whose "use" is not "sig" are skipped, so one JWKS
// can be shared with other services. kInvalidArgument if the document is
// malformed, a supported key is malformed (wrong lengths, point not on the
// curve), holds private material ("d"), declares an "alg" that contradicts
// its type, or two keys share a kid.
absl::StatusOr<JwkSet> ParseJwkSet(std::string_view json);

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWK_SET_H_

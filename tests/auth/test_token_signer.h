// Test-only: keys made with OpenSSL, JWKS documents and signed JWTs, so the
// verifier is tested against tokens built independently of its own code
// (except base64url encoding, which base64url_test pins to RFC vectors).
#ifndef ROOMSYNC_TESTS_AUTH_TEST_TOKEN_SIGNER_H_
#define ROOMSYNC_TESTS_AUTH_TEST_TOKEN_SIGNER_H_

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace roomsync::testing {

// A fresh private key. kind is "ES256" (P-256) or "EdDSA" (Ed25519).
class TestKey {
 public:
  static TestKey Generate(std::string_view kind, std::string kid);

  // The public JWK as JSON (kid omitted when empty).
  std::string PublicJwk() const;
  // The raw public key bytes (x||y for P-256, x for Ed25519): what an
  // attacker would try as an HMAC secret in an algorithm-confusion attack.
  std::string PublicBytes() const;
  // The JWS signature over `signing_input` (raw, JOSE format).
  std::string Sign(std::string_view signing_input) const;

  const std::string& kind() const { return kind_; }
  const std::string& kid() const { return kid_; }

 private:
  std::string kind_;
  std::string kid_;
  std::shared_ptr<EVP_PKEY> key_;
};

std::string JwksJson(const std::vector<const TestKey*>& keys);

// "<b64(header)>.<b64(payload)>": what the signature covers.
std::string SigningInput(std::string_view header_json, std::string_view payload_json);
std::string HmacSha256(std::string_view secret, std::string_view data);

// Complete tokens.
std::string SignHs256(std::string_view secret, std::string_view header_json,
                      std::string_view payload_json);
std::string SignWith(const TestKey& key, std::string_view header_json,
                     std::string_view payload_json);

// {"alg":..,"typ":"JWT"[,"kid":..]}
std::string Header(std::string_view alg, std::string_view kid = "");
// A claims set with sub, exp, rooms and scope; `extra` is spliced in as
// more members (e.g. R"("iss":"x")").
std::string Claims(absl::Time exp, std::string_view rooms_json = R"(["room-a"])",
                   std::string_view scope = "read write", std::string_view extra = "");

// A directory under $TMPDIR removed (recursively) when destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name atomically (temp file + rename), as
  // an operator rotating keys should; returns the full path.
  std::string Write(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_AUTH_TEST_TOKEN_SIGNER_H_

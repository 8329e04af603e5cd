#include "auth/jws_signature.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

namespace roomsync {
namespace {

constexpr size_t kSha256Bytes = 32;
constexpr size_t kEs256SignatureBytes = 64;  // r and s, 32 bytes each
constexpr size_t kEd25519SignatureBytes = 64;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Failed checks leave entries on OpenSSL's per-thread error queue; clear
// them so a later TLS call on this thread (Beast, gRPC) does not mistake
// them for its own.
absl::Status BadSignature() {
  ERR_clear_error();
  return absl::UnauthenticatedError("token signature is invalid");
}

// OpenSSL verifies ECDSA signatures in DER (SEQUENCE of two INTEGERs); JOSE
// sends the fixed-width r||s. Re-encoding through ECDSA_SIG also refuses
// r or s of zero before any curve arithmetic happens.
absl::StatusOr<std::string> JoseToDer(std::string_view signature) {
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(Bytes(signature), 32, nullptr);
  BIGNUM* s = BN_bin2bn(Bytes(signature) + 32, 32, nullptr);
  if (!sig || r == nullptr || s == nullptr || BN_is_zero(r) || BN_is_zero(s) ||
      ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return BadSignature();
  }
  // ECDSA_SIG_set0 now owns r and s.
  unsigned char* der = nullptr;
  int der_length = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_length <= 0) return absl::InternalError("OpenSSL could not encode an ECDSA signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(der_length));
  OPENSSL_free(der);
  return out;
}

}  // namespace

absl::Status VerifyHs256(std::string_view secret, std::string_view signing_input,
                         std::string_view signature) {
  if (signature.size() != kSha256Bytes) return BadSignature();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  // The one-shot HMAC() is not deprecated in OpenSSL 3 (HMAC_CTX is).
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), Bytes(signing_input),
           signing_input.size(), mac, &mac_length) == nullptr ||
      mac_length != kSha256Bytes) {
    return absl::InternalError("OpenSSL could not compute HMAC-SHA256");
  }
  // Constant time: a byte-by-byte early exit would let an attacker learn
  // the correct MAC one byte at a time from response timing.
  if (CRYPTO_memcmp(mac, signature.data(), kSha256Bytes) != 0) return BadSignature();
  return absl::OkStatus();
}

absl::Status VerifyWithPublicKey(const PublicJwk& jwk, std::string_view signing_input,
                                 std::string_view signature) {
  std::string der;
  const EVP_MD* digest = nullptr;  // Ed25519 hashes internally: no digest
  std::string_view to_check = signature;
  switch (jwk.alg) {
    case JwsAlgorithm::kEs256: {
      if (signature.size() != kEs256SignatureBytes) return BadSignature();
      absl::StatusOr<std::string> converted = JoseToDer(signature);
      if (!converted.ok()) return converted.status();
      der = *std::move(converted);
      to_check = der;
      digest = EVP_sha256();
      break;
    }
    case JwsAlgorithm::kEdDsa:
      if (signature.size() != kEd25519SignatureBytes) return BadSignature();
      break;
    case JwsAlgorithm::kHs256:
      return absl::InternalError("an HMAC algorithm reached public-key verification");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                               EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, digest, nullptr, jwk.key.get()) != 1) {
    return absl::InternalError("OpenSSL could not start signature verification");
  }
  int verified = EVP_DigestVerify(ctx.get(), Bytes(to_check), to_check.size(),
                                  Bytes(signing_input), signing_input.size());
  if (verified != 1) return BadSignature();
  return absl::OkStatus();
}

}  // namespace roomsync

#include "auth/jwk_set.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "auth/base64url.h"
#include "auth/json_object.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

using auth_internal::CheckUniqueMembers;

// Public keys are built with OpenSSL 3's EVP API directly: Debian's libjwt
// 1.10 has neither JWKS parsing nor EdDSA, and cpp-jwt 1.4 only takes PEM
// keys (no JWK, no EdDSA), so neither can load a JWKS file.
std::shared_ptr<EVP_PKEY> WrapKey(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

absl::StatusOr<std::string> ReadString(simdjson::dom::object jwk, std::string_view name,
                                       std::string_view where) {
  std::string_view value;
  if (jwk[name].get_string().get(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(where), " has no string \"", ToAbsl(name), "\""));
  }
  return std::string(value);
}

// A base64url coordinate of exactly `bytes` bytes.
absl::StatusOr<std::string> ReadCoordinate(simdjson::dom::object jwk, std::string_view name,
                                           size_t bytes, std::string_view where) {
  absl::StatusOr<std::string> text = ReadString(jwk, name, where);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> raw = Base64UrlDecode(*text);
  if (!raw.ok() || raw->size() != bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(where), "'s \"", ToAbsl(name), "\" is not ", bytes, " base64url-encoded bytes"));
  }
  return raw;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> P256PublicKey(const std::string& x,
                                                        const std::string& y,
                                                        std::string_view where) {
  // SEC 1 uncompressed point: 0x04 || X || Y.
  std::string point = absl::StrCat("\x04", x, y);
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> builder(OSSL_PARAM_BLD_new(),
                                                                          OSSL_PARAM_BLD_free);
  if (!builder ||
      !OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                       0) ||
      !OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return absl::InternalError("OpenSSL could not build EC key parameters");
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(
      OSSL_PARAM_BLD_to_param(builder.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw_key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(where), " is not a valid P-256 public key"));
  }
  std::shared_ptr<EVP_PKEY> key = WrapKey(raw_key);
  // A point off the curve (or at infinity) invites invalid-curve attacks;
  // fromdata already decodes strictly, the explicit check makes it certain.
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr), EVP_PKEY_CTX_free);
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(where), "'s point is not on the P-256 curve"));
  }
  return key;
}

// One JWK; nullopt-like empty key when the JWK is of a type we skip.
absl::StatusOr<PublicJwk> ParseJwk(simdjson::dom::object jwk, std::string_view where,
                                   bool* skipped) {
  *skipped = false;
  if (absl::Status unique = CheckUniqueMembers(jwk, where); !unique.ok()) return unique;
  absl::StatusOr<std::string> kty = ReadString(jwk, "kty", where);
  if (!kty.ok()) return kty.status();
  std::string_view use;
  if (!jwk["use"].get_string().get(use) && use != "sig") {
    *skipped = true;  // an encryption key: never a signature key
    return PublicJwk{};
  }
  std::string_view crv;
  bool has_crv = !jwk["crv"].get_string().get(crv);
  PublicJwk out;
  if (*kty == "EC" && has_crv && crv == "P-256") {
    out.alg = JwsAlgorithm::kEs256;
  } else if (*kty == "OKP" && has_crv && crv == "Ed25519") {
    out.alg = JwsAlgorithm::kEdDsa;
  } else {
    *skipped = true;  // RSA, other curves: not ours to use
    return PublicJwk{};
  }
  if (!jwk["d"].error()) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(where), " holds a private key (\"d\"); give the server public keys only"));
  }
  std::string_view declared_alg;
  if (!jwk["alg"].get_string().get(declared_alg) &&
      declared_alg != JwsAlgorithmName(out.alg)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(where), "'s \"alg\" does not match its key type"));
  }
  std::string_view kid;
  if (!jwk["kid"].error() && jwk["kid"].get_string().get(kid)) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(where), "'s \"kid\" is not a string"));
  }
  out.kid = std::string(kid);

  absl::StatusOr<std::string> x = ReadCoordinate(jwk, "x", 32, where);
  if (!x.ok()) return x.status();
  if (out.alg == JwsAlgorithm::kEs256) {
    absl::StatusOr<std::string> y = ReadCoordinate(jwk, "y", 32, where);
    if (!y.ok()) return y.status();
    absl::StatusOr<std::shared_ptr<EVP_PKEY>> key = P256PublicKey(*x, *y, where);
    if (!key.ok()) return key.status();
    out.key = *std::move(key);
  } else {
    EVP_PKEY* raw_key = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
    if (raw_key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(where), " is not a valid Ed25519 public key"));
    }
    out.key = WrapKey(raw_key);
  }
  return out;
}

}  // namespace

absl::StatusOr<const PublicJwk*> JwkSet::Find(JwsAlgorithm alg, std::string_view kid) const {
  if (!kid.empty()) {
    for (const PublicJwk& jwk : keys_) {
      if (jwk.kid != kid) continue;
      if (jwk.alg != alg) {
        return absl::FailedPreconditionError(
            absl::StrCat("the key named by \"kid\" is not an ", ToAbsl(JwsAlgorithmName(alg)),
                         " key"));
      }
      return &jwk;
    }
    return absl::NotFoundError("no key has the token's \"kid\"");
  }
  const PublicJwk* found = nullptr;
  for (const PublicJwk& jwk : keys_) {
    if (jwk.alg != alg) continue;
    if (found != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the token has no \"kid\" and several ", ToAbsl(JwsAlgorithmName(alg)), " keys exist"));
    }
    found = &jwk;
  }
  if (found == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no ", ToAbsl(JwsAlgorithmName(alg)), " key is configured"));
  }
  return found;
}

bool JwkSet::HasKid(std::string_view kid) const {
  for (const PublicJwk& jwk : keys_) {
    if (jwk.kid == kid) return true;
  }
  return false;
}

absl::StatusOr<JwkSet> ParseJwkSet(std::string_view json) {
  // Refused keys leave entries on OpenSSL's per-thread error queue; a later
  // TLS call on this thread must not mistake them for its own.
  struct ClearOpenSslErrors {
    ~ClearOpenSslErrors() { ERR_clear_error(); }
  } clear_errors;
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::object> root =
      auth_internal::ParseUniqueObject(parser, json, "JWKS document");
  if (!root.ok()) return root.status();
  simdjson::dom::array array;
  if ((*root)["keys"].get_array().get(array)) {
    return absl::InvalidArgumentError("JWKS document has no \"keys\" array");
  }
  std::vector<PublicJwk> keys;
  size_t index = 0;
  for (simdjson::dom::element element : array) {
    std::string where = absl::StrCat("JWKS key #", index++);
    simdjson::dom::object jwk;
    if (element.get_object().get(jwk)) {
      return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
    }
    bool skipped = false;
    absl::StatusOr<PublicJwk> parsed = ParseJwk(jwk, where, &skipped);
    if (!parsed.ok()) return parsed.status();
    if (skipped) continue;
    // Two keys under one kid would make the choice depend on file order.
    for (const PublicJwk& other : keys) {
      if (!parsed->kid.empty() && other.kid == parsed->kid) {
        return absl::InvalidArgumentError(absl::StrCat(where, " repeats another key's \"kid\""));
      }
    }
    keys.push_back(*std::move(parsed));
  }
  return JwkSet(std::move(keys));
}

}  // namespace roomsync

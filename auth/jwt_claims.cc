#include "auth/jwt_claims.h"

#include <simdjson.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth/json_object.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

// One DOM parser per thread: Verify runs on many threads at once and
// simdjson parsers are not shareable; reusing one keeps the steady state
// free of allocations.
simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

bool Has(simdjson::dom::object object, std::string_view name) {
  return !object[name].error();
}

absl::Status WrongType(std::string_view claim, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", ToAbsl(claim), "\" must be ", ToAbsl(expected)));
}

// Optional string member: nullopt if absent, an error if not a string.
absl::StatusOr<std::optional<std::string>> OptionalString(simdjson::dom::object object,
                                                          std::string_view name) {
  simdjson::dom::element value;
  if (object[name].get(value)) return std::nullopt;
  std::string_view text;
  if (value.get_string().get(text)) return WrongType(name, "a string");
  return std::string(text);
}

// NumericDate (RFC 7519 §2). Fractions are allowed; values beyond the year
// ~5000 are refused so later arithmetic stays far from overflow.
absl::StatusOr<std::optional<absl::Time>> OptionalNumericDate(simdjson::dom::object object,
                                                              std::string_view name) {
  constexpr double kMaxSeconds = 1e11;
  simdjson::dom::element value;
  if (object[name].get(value)) return std::nullopt;
  int64_t whole = 0;
  if (!value.get_int64().get(whole)) {
    if (whole > kMaxSeconds || whole < -kMaxSeconds) return WrongType(name, "a plausible date");
    return absl::FromUnixSeconds(whole);
  }
  double seconds = 0;
  if (value.get_double().get(seconds)) return WrongType(name, "a number (seconds since 1970)");
  if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxSeconds) {
    return WrongType(name, "a plausible date");
  }
  return absl::FromUnixMicros(static_cast<int64_t>(seconds * 1e6));
}

absl::Status ReadStringArray(simdjson::dom::element value, std::string_view name,
                             std::vector<std::string>* out) {
  simdjson::dom::array array;
  if (value.get_array().get(array)) return WrongType(name, "an array of strings");
  for (simdjson::dom::element item : array) {
    std::string_view text;
    if (item.get_string().get(text) || text.empty()) {
      return WrongType(name, "an array of non-empty strings");
    }
    out->emplace_back(text);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JwtHeader> ParseJwtHeader(std::string_view json) {
  absl::StatusOr<simdjson::dom::object> header =
      auth_internal::ParseUniqueObject(ThreadParser(), json, "token header");
  if (!header.ok()) return header.status();
  std::string_view alg;
  if ((*header)["alg"].get_string().get(alg)) {
    return absl::InvalidArgumentError("token header has no string \"alg\"");
  }
  std::optional<JwsAlgorithm> parsed = ParseJwsAlgorithm(alg);
  if (!parsed) {
    // "none" included: unsigned tokens are never accepted (PROTOCOL.md).
    return absl::InvalidArgumentError("token algorithm is not one of HS256, ES256, EdDSA");
  }
  if (Has(*header, "crit")) {
    return absl::InvalidArgumentError("token header has \"crit\" extensions we do not implement");
  }
  absl::StatusOr<std::optional<std::string>> typ = OptionalString(*header, "typ");
  if (!typ.ok()) return typ.status();
  if (*typ) {
    // RFC 7519 §5.1 and RFC 9068 §2.1; media types compare without case.
    std::string lower = absl::AsciiStrToLower(**typ);
    if (lower != "jwt" && lower != "at+jwt" && lower != "application/at+jwt") {
      return absl::InvalidArgumentError("token \"typ\" is not JWT");
    }
  }
  absl::StatusOr<std::optional<std::string>> kid = OptionalString(*header, "kid");
  if (!kid.ok()) return kid.status();
  return JwtHeader{*parsed, kid->value_or("")};
}

absl::StatusOr<JwtClaims> ParseJwtClaims(std::string_view json) {
  absl::StatusOr<simdjson::dom::object> claims_object =
      auth_internal::ParseUniqueObject(ThreadParser(), json, "token claims");
  if (!claims_object.ok()) return claims_object.status();
  simdjson::dom::object object = *claims_object;
  JwtClaims claims;

  absl::StatusOr<std::optional<std::string>> sub = OptionalString(object, "sub");
  if (!sub.ok()) return sub.status();
  if (!*sub || (*sub)->empty()) return WrongType("sub", "a non-empty string");
  claims.subject = **sub;

  absl::StatusOr<std::optional<absl::Time>> exp = OptionalNumericDate(object, "exp");
  if (!exp.ok()) return exp.status();
  // A token without "exp" would be valid forever once stolen.
  if (!*exp) return absl::InvalidArgumentError("token has no \"exp\"");
  claims.expires = **exp;

  absl::StatusOr<std::optional<absl::Time>> nbf = OptionalNumericDate(object, "nbf");
  if (!nbf.ok()) return nbf.status();
  claims.not_before = *nbf;

  absl::StatusOr<std::optional<std::string>> iss = OptionalString(object, "iss");
  if (!iss.ok()) return iss.status();
  claims.issuer = *iss;

  simdjson::dom::element aud;
  if (!object["aud"].get(aud)) {
    std::string_view single;
    if (!aud.get_string().get(single)) {
      claims.audiences.emplace_back(single);
    } else if (absl::Status status = ReadStringArray(aud, "aud", &claims.audiences);
               !status.ok()) {
      return WrongType("aud", "a string or an array of strings");
    }
  }

  simdjson::dom::element rooms;
  if (!object["rooms"].get(rooms)) {
    if (absl::Status status = ReadStringArray(rooms, "rooms", &claims.rooms); !status.ok()) {
      return status;
    }
  }

  absl::StatusOr<std::optional<std::string>> scope = OptionalString(object, "scope");
  if (!scope.ok()) return scope.status();
  if (*scope) {
    for (absl::string_view word : absl::StrSplit(**scope, ' ', absl::SkipEmpty())) {
      if (word == "write") claims.can_write = true;
      if (word == "admin") claims.admin = true;
    }
  }
  return claims;
}

}  // namespace roomsync

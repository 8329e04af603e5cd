#include "gateway/auth_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, auth, "jwt",
          "jwt: every room endpoint needs a bearer JWT; off: no authentication at all "
          "(development only, logged as a warning)");
ABSL_FLAG(std::string, jwt_hs256_secret_file, "",
          "file with the HS256 shared secret (at least 32 bytes; mode 0600)");
ABSL_FLAG(std::string, jwks_file, "",
          "JWKS file with the ES256/EdDSA public keys; re-read when it changes");
ABSL_FLAG(std::string, jwt_issuer, "", "when set, tokens' \"iss\" must equal it");
ABSL_FLAG(std::string, jwt_audience, "", "when set, tokens' \"aud\" must contain it");
ABSL_FLAG(absl::Duration, jwt_leeway, absl::Seconds(30),
          "clock skew tolerated for \"exp\" and \"nbf\"");

namespace roomsync {

absl::StatusOr<std::optional<JwtConfig>> JwtConfigFromFlags() {
  const std::string mode = absl::GetFlag(FLAGS_auth);
  if (mode == "off") return std::optional<JwtConfig>();
  if (mode != "jwt") return absl::InvalidArgumentError("--auth must be jwt or off");
  JwtConfig config;
  config.hs256_secret_file = absl::GetFlag(FLAGS_jwt_hs256_secret_file);
  config.jwks_file = absl::GetFlag(FLAGS_jwks_file);
  config.issuer = absl::GetFlag(FLAGS_jwt_issuer);
  config.audience = absl::GetFlag(FLAGS_jwt_audience);
  config.leeway = absl::GetFlag(FLAGS_jwt_leeway);
  if (config.hs256_secret_file.empty() && config.jwks_file.empty()) {
    return absl::InvalidArgumentError(
        "--auth jwt (the default) needs --jwt_hs256_secret_file and/or --jwks_file; "
        "pass --auth off to run without authentication (development only)");
  }
  if (config.leeway < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--jwt_leeway must not be negative");
  }
  return config;
}

}  // namespace roomsync

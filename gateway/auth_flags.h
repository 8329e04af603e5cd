// The authentication flags of all three binaries (roomsync, roomsync-room,
// roomsync-gateway), defined once here so that the single node, which links
// both the room service's and the gateway's flags, has one set:
//   --auth jwt|off  --jwt_hs256_secret_file  --jwks_file  --jwt_issuer
//   --jwt_audience  --jwt_leeway
#ifndef ROOMSYNC_GATEWAY_AUTH_FLAGS_H_
#define ROOMSYNC_GATEWAY_AUTH_FLAGS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "auth/jwt_verifier.h"

namespace roomsync {

// The JWT config from the parsed flags; nullopt for --auth off.
// kInvalidArgument for another --auth value, or for --auth jwt without
// --jwt_hs256_secret_file or --jwks_file (the message says what to pass).
absl::StatusOr<std::optional<JwtConfig>> JwtConfigFromFlags();

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_AUTH_FLAGS_H_

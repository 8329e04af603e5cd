// The gateway's security flags, shared by roomsync-gateway and the single
// node roomsync: auth (gateway/auth_flags), rate limits and quotas, HTTPS,
// the deadline of calls to the room service (--grpc_deadline_ms), and the
// web root (--web). Each also ROOMSYNC_<NAME>.
#ifndef ROOMSYNC_GATEWAY_GATEWAY_FLAGS_H_
#define ROOMSYNC_GATEWAY_GATEWAY_FLAGS_H_

#include "absl/status/statusor.h"
#include "gateway/gateway.h"

namespace roomsync {

// A config with the fields those flags cover filled in (the rest default).
// kInvalidArgument names the bad flag.
absl::StatusOr<GatewayConfig> GatewayConfigFromFlags();

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_GATEWAY_FLAGS_H_

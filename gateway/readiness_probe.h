// /readyz: the gateway can serve when the room service answers the standard
// grpc.health.v1.Health/Check with SERVING.
#ifndef ROOMSYNC_GATEWAY_READINESS_PROBE_H_
#define ROOMSYNC_GATEWAY_READINESS_PROBE_H_

#include "gateway/replication_handlers.h"

namespace roomsync {

struct GatewayContext;

void HandleReadiness(GatewayContext& context, ApiReply reply);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_READINESS_PROBE_H_

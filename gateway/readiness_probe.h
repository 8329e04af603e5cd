// /readyz: the gateway can serve when the room service answers the standard
// grpc.health.v1.Health/Check with SERVING.
//
// With several room nodes every node is checked (in parallel) and the
// gateway is ready while AT LEAST ONE serves; the body counts them
// ({"status":"ready","room_nodes":3,"room_nodes_serving":2}). Not "every
// node": a node that is down is down for every gateway alike (they share
// the shard map), so failing readiness would only take all gateways out of
// the load balancer at once, turning one node's outage (or a rolling
// restart of the room StatefulSet) into an outage of every room. Rooms of a
// node that is down answer 503 on their own. Zero serving nodes (this
// gateway cut off, or every node down) is not ready.
#ifndef ROOMSYNC_GATEWAY_READINESS_PROBE_H_
#define ROOMSYNC_GATEWAY_READINESS_PROBE_H_

#include "gateway/replication_handlers.h"

namespace roomsync {

struct GatewayContext;

void HandleReadiness(GatewayContext& context, ApiReply reply);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_READINESS_PROBE_H_

// The unary endpoints of PROTOCOL.md (pull, push, history): validate the
// HTTP request, make one gRPC call, splice the answer into JSON.
//
// `caller` has been authenticated and authorized for the room; its token is
// forwarded upstream. Each handler calls `reply` exactly once: inline for a request it refuses
// itself, else on a gRPC callback thread. `reply` must not block.
#ifndef ROOMSYNC_GATEWAY_REPLICATION_HANDLERS_H_
#define ROOMSYNC_GATEWAY_REPLICATION_HANDLERS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/api_response.h"
#include "gateway/query_params.h"
#include "gateway/request_auth.h"

namespace roomsync {

struct GatewayContext;

using ApiReply = std::function<void(ApiResponse)>;

// The optional `collection` parameter, validated: empty = every collection.
absl::StatusOr<std::string> OptionalCollectionParam(const QueryParams& query);

void HandlePull(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                ApiReply reply);
void HandlePush(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                std::string_view body, ApiReply reply);
void HandleHistory(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                   ApiReply reply);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_REPLICATION_HANDLERS_H_

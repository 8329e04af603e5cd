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
#include "gateway/routes.h"

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
// GET .../history/pages/{page} (history_pages.h): one History read; 400 for
// a malformed page, 404 for a page of another epoch. A complete page is
// cacheable with a strong ETag, and `if_none_match` naming it is a 304.
void HandleHistoryPage(GatewayContext& context, const Caller& caller, const Route& route,
                       const QueryParams& query, std::string_view if_none_match, ApiReply reply);

// Encrypted snapshots (docs/api.md, "Snapshots"). POST .../snapshots with
// ?checkpoint={"seq":N,"epoch":"E"} and optionally compact=1, the body the
// opaque snapshot (its size bounded by the session before it is read):
// 201 with {"seq","epoch","bytes","created"}.
void HandlePutSnapshot(GatewayContext& context, const Caller& caller, const std::string& room,
                       const QueryParams& query, std::string body, ApiReply reply);
// GET .../snapshots/latest: the bytes, with the checkpoint to pull from in
// Roomsync-Checkpoint and an ETag (`if_none_match` naming it: 304); 404
// not_found when the room has none.
void HandleGetSnapshot(GatewayContext& context, const Caller& caller, const std::string& room,
                       std::string_view if_none_match, ApiReply reply);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_REPLICATION_HANDLERS_H_

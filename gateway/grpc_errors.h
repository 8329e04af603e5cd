// gRPC status -> the protocol's HTTP error (PROTOCOL.md): the status code
// picks the HTTP status, the trailing metadata "roomsync-error-code" (when
// the room service sent one) the protocol code.
#ifndef ROOMSYNC_GATEWAY_GRPC_ERRORS_H_
#define ROOMSYNC_GATEWAY_GRPC_ERRORS_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "gateway/api_response.h"

namespace roomsync {

ApiResponse ErrorFromGrpc(const grpc::Status& status, const grpc::ClientContext& context);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_GRPC_ERRORS_H_

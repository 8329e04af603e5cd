#include "gateway/grpc_errors.h"

#include <string>

#include "protocol/error_codes.h"

namespace roomsync {

ApiResponse ErrorFromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  // grpc::StatusCode and absl::StatusCode share their numbering.
  absl::Status error(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  const auto& trailers = context.GetServerTrailingMetadata();
  auto found = trailers.find(grpc::string_ref(kErrorCodeMetadataKey.data(),
                                              kErrorCodeMetadataKey.size()));
  if (found != trailers.end()) {
    error = WithErrorCode(std::move(error), std::string_view(found->second.data(), found->second.size()));
  }
  return ErrorFromStatus(error);
}

}  // namespace roomsync

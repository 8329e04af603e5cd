#include "gateway/grpc_errors.h"

#include <string>

#include "protocol/error_codes.h"

namespace roomsync {

ApiResponse ErrorFromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  // grpc::StatusCode and absl::StatusCode share their numbering.
  auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string error_code(DefaultErrorCode(code));
  const auto& trailers = context.GetServerTrailingMetadata();
  auto found = trailers.find(grpc::string_ref(kErrorCodeMetadataKey.data(),
                                              kErrorCodeMetadataKey.size()));
  if (found != trailers.end()) error_code.assign(found->second.data(), found->second.size());
  std::string message = status.error_message();
  if (message.empty()) message = error_code;
  return ErrorResponse(HttpStatusOf(code), error_code, message);
}

}  // namespace roomsync

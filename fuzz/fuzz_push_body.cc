// libFuzzer target: the push body parser (gateway/push_body.h), the first
// JSON the gateway reads from a client. The first byte picks the limits:
// the defaults, or tight ones so the count, size and depth checks are hit.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/push_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  roomsync::DocumentLimits limits;
  if (data[0] & 1) {
    limits.max_document_bytes = 256;
    limits.max_documents_per_push = 4;
    limits.max_push_bytes = 2048;
    limits.max_id_bytes = 8;
    limits.max_json_depth = 4;
  }
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  roomsync::v1::PushRequest request;
  absl::Status parsed = roomsync::ParsePushBody(body, limits, &request);
  if (!parsed.ok()) return 0;
  // An accepted batch keeps the promises of the header.
  if (static_cast<size_t>(request.items_size()) > limits.max_documents_per_push) std::abort();
  for (const roomsync::v1::PushItem& item : request.items()) {
    if (item.new_document_state().size() > limits.max_document_bytes) std::abort();
    if (item.new_document_state().empty() || item.new_document_state().front() != '{') {
      std::abort();
    }
  }
  return 0;
}

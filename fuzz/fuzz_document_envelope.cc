// libFuzzer target: the document envelope and assumedMasterState parsers
// that read every pushed document. The first byte picks the limits: the
// defaults, or tight ones so the size, id-length and depth checks are hit.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/document_envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  roomsync::DocumentLimits limits;
  if (data[0] & 1) {
    limits.max_document_bytes = 256;
    limits.max_id_bytes = 8;
    limits.max_json_depth = 4;
  }
  std::string_view json(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto envelope = roomsync::ParseDocumentEnvelope(json, limits);
  // Accepted documents keep the promises the header makes.
  if (envelope.ok() && (envelope->id.empty() || envelope->id.size() > limits.max_id_bytes ||
                        json.size() > limits.max_document_bytes)) {
    std::abort();
  }
  (void)roomsync::ParseAssumedMaster(json, limits);
  return 0;
}

// Reading the envelope out of a client's JSON document: the few members the
// server needs to order and resolve changes ("id", "timestamp",
// "_deleted"). Everything else in the object stays opaque bytes.
#ifndef ROOMSYNC_PROTOCOL_DOCUMENT_ENVELOPE_H_
#define ROOMSYNC_PROTOCOL_DOCUMENT_ENVELOPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync {

// Configurable limits of the protocol (PROTOCOL.md defaults).
struct DocumentLimits {
  size_t max_document_bytes = 64 * 1024;
  size_t max_documents_per_push = 1000;
  size_t max_push_bytes = 8 * 1024 * 1024;
  size_t max_id_bytes = 256;
  // Deeper objects are refused: a parser's stack must stay bounded.
  size_t max_json_depth = 64;
  // Largest encrypted snapshot (docs/api.md, "Snapshots"): the HTTP body
  // bound of POST .../snapshots and the room service's refusal.
  size_t max_snapshot_bytes = 4 * 1024 * 1024;
};

struct DocumentEnvelope {
  std::string id;
  int64_t timestamp_ms = 0;
  bool deleted = false;
};

// Parses and fully validates `json` (well-formed by RFC 8259's grammar, lone
// surrogate escapes such as "\ud83c" included; valid UTF-8; within the size
// and depth limits) as a document: a JSON object with a string "id" of
// 1..max_id_bytes bytes that decodes to Unicode text without U+0000, an
// integer "timestamp", an optional boolean "_deleted", and no "_collection".
// kInvalidArgument says what is wrong without quoting the document.
absl::StatusOr<DocumentEnvelope> ParseDocumentEnvelope(std::string_view json,
                                                       const DocumentLimits& limits);

// Parses RxDB's assumedMasterState: the JSON literal null (nullopt), or an
// object whose "timestamp" and "_deleted" are compared with the stored
// document. The id is not required to be present.
struct AssumedMaster {
  int64_t timestamp_ms = 0;
  bool deleted = false;
};
absl::StatusOr<std::optional<AssumedMaster>> ParseAssumedMaster(
    std::string_view json, const DocumentLimits& limits);

}  // namespace roomsync

#endif  // ROOMSYNC_PROTOCOL_DOCUMENT_ENVELOPE_H_

#include "protocol/document_envelope.h"

#include <simdjson.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/json_text.h"
#include "base/string_view.h"
#include "protocol/error_codes.h"

namespace roomsync {
namespace {

// One DOM parser per thread: simdjson reuses its buffers across documents,
// so steady-state parsing allocates nothing.
simdjson::dom::parser& ThreadParser(size_t max_depth) {
  thread_local simdjson::dom::parser parser;
  thread_local size_t depth = 0;
  if (depth != max_depth) {
    // allocate() sets the nesting limit; capacity grows on demand.
    if (parser.allocate(64 * 1024, max_depth) != simdjson::SUCCESS) return parser;
    depth = max_depth;
  }
  return parser;
}

absl::StatusOr<simdjson::dom::element> ParseWhole(std::string_view json,
                                                  const DocumentLimits& limits,
                                                  std::string_view what) {
  if (json.size() > limits.max_document_bytes) {
    return WithErrorCode(absl::InvalidArgumentError(absl::StrCat(
                             ToAbsl(what), " is ", json.size(),
                             " bytes, larger than the limit of ", limits.max_document_bytes)),
                         "payload_too_large");
  }
  simdjson::dom::parser& parser = ThreadParser(limits.max_json_depth);
  // RFC 8259 allows escapes of lone surrogates ("\ud83c") and simdjson does
  // not: parse a copy in which they read "\u0000" (base/json_text.h).
  std::optional<std::string> masked = MaskLoneSurrogateEscapes(json);
  std::string_view parsed = masked ? std::string_view(*masked) : json;
  // realloc_if_needed=true: the input is copied into simdjson's padded
  // buffer, so the copy may go out of scope and any std::string is safe.
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(parsed.data(), parsed.size(), true).get(root);
  if (error == simdjson::DEPTH_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(what), " is nested deeper than ", limits.max_json_depth, " levels"));
  }
  if (error == simdjson::UTF8_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not valid UTF-8"));
  }
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not valid JSON"));
  }
  return root;
}

absl::StatusOr<int64_t> ReadTimestamp(simdjson::dom::object object, std::string_view what) {
  simdjson::dom::element value;
  if (object["timestamp"].get(value)) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " has no \"timestamp\""));
  }
  int64_t timestamp = 0;
  if (value.get_int64().get(timestamp)) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(what), "'s \"timestamp\" must be an integer (milliseconds since the Unix epoch)"));
  }
  if (timestamp < 0) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), "'s \"timestamp\" must not be negative"));
  }
  return timestamp;
}

absl::StatusOr<bool> ReadDeleted(simdjson::dom::object object, std::string_view what) {
  simdjson::dom::element value;
  if (object["_deleted"].get(value)) return false;
  if (value.is_null()) return false;
  bool deleted = false;
  if (value.get_bool().get(deleted)) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), "'s \"_deleted\" must be a boolean"));
  }
  return deleted;
}

}  // namespace

absl::StatusOr<DocumentEnvelope> ParseDocumentEnvelope(std::string_view json,
                                                       const DocumentLimits& limits) {
  absl::StatusOr<simdjson::dom::element> root = ParseWhole(json, limits, "document");
  if (!root.ok()) return root.status();
  simdjson::dom::object object;
  if (root->get_object().get(object)) {
    return absl::InvalidArgumentError("document must be a JSON object");
  }
  DocumentEnvelope envelope;
  simdjson::dom::element id;
  if (object["id"].get(id)) {
    return absl::InvalidArgumentError("document has no \"id\"");
  }
  std::string_view id_text;
  if (id.get_string().get(id_text)) {
    return absl::InvalidArgumentError("document's \"id\" must be a string");
  }
  if (id_text.empty() || id_text.size() > limits.max_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document's \"id\" must be 1-", limits.max_id_bytes, " bytes, got ", id_text.size()));
  }
  // A lone surrogate escape reads as U+0000 in the masked copy we parsed.
  if (id_text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "document's \"id\" must decode to Unicode text: a lone UTF-16 surrogate escape (such as "
        "\\ud83c) or \\u0000 cannot be part of an id");
  }
  envelope.id = std::string(id_text);
  simdjson::dom::element reserved;
  if (!object["_collection"].get(reserved)) {
    return absl::InvalidArgumentError(
        "document must not contain \"_collection\" (reserved for the server)");
  }
  absl::StatusOr<int64_t> timestamp = ReadTimestamp(object, "document");
  if (!timestamp.ok()) return timestamp.status();
  envelope.timestamp_ms = *timestamp;
  absl::StatusOr<bool> deleted = ReadDeleted(object, "document");
  if (!deleted.ok()) return deleted.status();
  envelope.deleted = *deleted;
  return envelope;
}

absl::StatusOr<std::optional<AssumedMaster>> ParseAssumedMaster(
    std::string_view json, const DocumentLimits& limits) {
  absl::StatusOr<simdjson::dom::element> root = ParseWhole(json, limits, "assumedMasterState");
  if (!root.ok()) return root.status();
  if (root->is_null()) return std::optional<AssumedMaster>();
  simdjson::dom::object object;
  if (root->get_object().get(object)) {
    return absl::InvalidArgumentError("assumedMasterState must be a JSON object or null");
  }
  AssumedMaster master;
  absl::StatusOr<int64_t> timestamp = ReadTimestamp(object, "assumedMasterState");
  if (!timestamp.ok()) return timestamp.status();
  master.timestamp_ms = *timestamp;
  absl::StatusOr<bool> deleted = ReadDeleted(object, "assumedMasterState");
  if (!deleted.ok()) return deleted.status();
  master.deleted = *deleted;
  return std::optional<AssumedMaster>(master);
}

}  // namespace roomsync

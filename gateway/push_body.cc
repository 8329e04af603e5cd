#include "gateway/push_body.h"

#include <simdjson.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/json_text.h"
#include "base/string_view.h"
#include "protocol/error_codes.h"

namespace roomsync {
namespace {

// simdjson's DOM validates the body (structure, UTF-8, depth) in one parse
// (of a copy whose lone-surrogate escapes are masked, base/json_text.h) but
// does not expose where a value's bytes are. The documents must be
// forwarded as the client's bytes, so after validation we minify the body
// and find each value's span with this scanner. It only ever runs on
// minified, already-validated JSON, so it needs no error handling.
size_t EndOfString(std::string_view json, size_t quote) {
  size_t i = quote + 1;
  while (json[i] != '"') i += json[i] == '\\' ? 2 : 1;
  return i + 1;
}

size_t EndOfValue(std::string_view json, size_t start) {
  char first = json[start];
  if (first == '"') return EndOfString(json, start);
  if (first != '{' && first != '[') {
    size_t i = start;
    while (i < json.size() && json[i] != ',' && json[i] != ']' && json[i] != '}') ++i;
    return i;
  }
  int depth = 0;
  size_t i = start;
  while (true) {
    char c = json[i];
    if (c == '"') {
      i = EndOfString(json, i);
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
    ++i;
  }
}

// The member `key` (raw, unescaped spelling) of the minified object `json`.
std::string_view MemberSpan(std::string_view json, std::string_view key) {
  size_t i = 1;  // after '{'
  while (i < json.size() && json[i] == '"') {
    size_t key_end = EndOfString(json, i);
    std::string_view raw_key = json.substr(i + 1, key_end - i - 2);
    size_t value_start = key_end + 1;  // skip ':'
    size_t value_end = EndOfValue(json, value_start);
    if (raw_key == key) return json.substr(value_start, value_end - value_start);
    i = value_end + 1;  // skip ','
  }
  return {};
}

absl::Status ItemError(size_t index, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("item ", index, ": ", ToAbsl(what)));
}

// The index of the top-level array item that byte `offset` of `body` lies
// in, if it lies in one. `body` is not known to be JSON, so this only
// follows strings and brackets and never fails.
std::optional<size_t> ItemAt(std::string_view body, size_t offset) {
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || i >= offset || body[i] != '[') return std::nullopt;
  size_t depth = 1;
  size_t item = 0;
  bool in_string = false;
  for (++i; i < offset && i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return std::nullopt;
    } else if (c == ',' && depth == 1) {
      ++item;
    }
  }
  return item;
}

// Raw bytes that are not UTF-8 (JSON text must be UTF-8, RFC 8259 8.1):
// where they are, never what they are.
absl::Status NotUtf8(std::string_view body) {
  std::optional<size_t> offset = FirstInvalidUtf8(body);
  if (!offset) return absl::InvalidArgumentError("body is not valid UTF-8");
  std::string what = absl::StrCat("not valid UTF-8 (byte ", *offset,
                                  " of the body); JSON text must be UTF-8, so encode other "
                                  "bytes, e.g. as base64");
  std::optional<size_t> item = ItemAt(body, *offset);
  if (!item) return absl::InvalidArgumentError(absl::StrCat("body is ", what));
  return ItemError(*item, what);
}

constexpr std::string_view kIdNotText =
    "document's \"id\" must decode to Unicode text: a lone UTF-16 surrogate escape (such "
    "as \\ud83c) or \\u0000 cannot be part of an id";

// The same rules as protocol/document_envelope.h, checked on the element we
// already parsed instead of parsing the document a second time.
absl::Status ValidateDocument(simdjson::dom::element element, std::string_view bytes,
                              const DocumentLimits& limits, size_t index) {
  simdjson::dom::object object;
  if (element.get_object().get(object)) return ItemError(index, "document must be a JSON object");
  if (bytes.size() > limits.max_document_bytes) {
    // 413 as from the room service (docs/api.md, Errors).
    return WithErrorCode(ItemError(index, absl::StrCat("document is ", bytes.size(),
                                                       " bytes, larger than the limit of ",
                                                       limits.max_document_bytes)),
                         "payload_too_large");
  }
  std::string_view id;
  if (object["id"].get_string().get(id)) {
    return ItemError(index, "document needs a string \"id\"");
  }
  if (id.empty() || id.size() > limits.max_id_bytes) {
    return ItemError(index, absl::StrCat("document's \"id\" must be 1-", limits.max_id_bytes,
                                         " bytes"));
  }
  // A lone surrogate escape reads as U+0000 in the masked copy we parsed.
  if (id.find('\0') != std::string_view::npos) return ItemError(index, kIdNotText);
  int64_t timestamp = 0;
  if (object["timestamp"].get_int64().get(timestamp) || timestamp < 0) {
    return ItemError(index,
                     "document needs an integer \"timestamp\" (milliseconds since the Unix epoch)");
  }
  simdjson::dom::element deleted;
  if (!object["_deleted"].get(deleted) && !deleted.is_null() && !deleted.is_bool()) {
    return ItemError(index, "document's \"_deleted\" must be a boolean");
  }
  simdjson::dom::element reserved;
  if (!object["_collection"].get(reserved)) {
    return ItemError(index, "document must not contain \"_collection\" (reserved for the server)");
  }
  return absl::OkStatus();
}

absl::Status ValidateAssumedMaster(simdjson::dom::element element, size_t index) {
  if (element.is_null()) return absl::OkStatus();
  simdjson::dom::object object;
  if (element.get_object().get(object)) {
    return ItemError(index, "assumedMasterState must be a JSON object or null");
  }
  int64_t timestamp = 0;
  if (object["timestamp"].get_int64().get(timestamp)) {
    return ItemError(index, "assumedMasterState needs an integer \"timestamp\"");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParsePushBody(std::string_view body, const DocumentLimits& limits,
                           v1::PushRequest* request) {
  thread_local simdjson::dom::parser parser;
  thread_local size_t parser_depth = 0;
  // Items nest documents two levels down (array, push row).
  size_t depth = limits.max_json_depth + 2;
  if (parser_depth != depth) {
    if (parser.allocate(64 * 1024, depth) != simdjson::SUCCESS) {
      return absl::ResourceExhaustedError("cannot allocate the JSON parser");
    }
    parser_depth = depth;
  }
  // RFC 8259 allows escapes of lone surrogates ("\ud83c", which
  // JSON.stringify writes) and simdjson does not: validate a copy in which
  // they are masked, forward the client's bytes.
  std::optional<std::string> masked = MaskLoneSurrogateEscapes(body);
  std::string_view parsed = masked ? std::string_view(*masked) : body;
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(parsed.data(), parsed.size(), true).get(root);
  if (error == simdjson::UTF8_ERROR) return NotUtf8(body);
  if (error == simdjson::DEPTH_ERROR) {
    return absl::InvalidArgumentError(
        absl::StrCat("body is nested deeper than ", limits.max_json_depth, " levels"));
  }
  if (error) return absl::InvalidArgumentError("body is not valid JSON");
  simdjson::dom::array items;
  if (root.get_array().get(items)) {
    return absl::InvalidArgumentError("body must be a JSON array of documents or push rows");
  }
  if (items.size() > limits.max_documents_per_push) {
    return WithErrorCode(absl::InvalidArgumentError(absl::StrCat(
                             "push has ", items.size(), " items, more than the limit of ",
                             limits.max_documents_per_push)),
                         "payload_too_large");
  }

  std::string minified(body.size(), '\0');
  size_t minified_size = 0;
  if (simdjson::minify(body.data(), body.size(), minified.data(), minified_size)) {
    return absl::InvalidArgumentError("body is not valid JSON");
  }
  minified.resize(minified_size);
  std::string_view json(minified);

  size_t position = 1;  // after '['
  size_t index = 0;
  for (simdjson::dom::element item : items) {
    size_t end = EndOfValue(json, position);
    std::string_view item_bytes = json.substr(position, end - position);
    position = end + 1;  // skip ',' or ']'

    simdjson::dom::object object;
    if (item.get_object().get(object)) return ItemError(index, "must be a JSON object");
    v1::PushItem* push_item = request->add_items();
    simdjson::dom::element new_state;
    if (object["newDocumentState"].get(new_state)) {
      absl::Status valid = ValidateDocument(item, item_bytes, limits, index);
      if (!valid.ok()) return valid;
      push_item->set_new_document_state(item_bytes.data(), item_bytes.size());
    } else {
      std::string_view new_bytes = MemberSpan(item_bytes, "newDocumentState");
      if (new_bytes.empty()) return ItemError(index, "escaped member names are not supported");
      absl::Status valid = ValidateDocument(new_state, new_bytes, limits, index);
      if (!valid.ok()) return valid;
      push_item->set_new_document_state(new_bytes.data(), new_bytes.size());
      simdjson::dom::element assumed;
      if (!object["assumedMasterState"].get(assumed)) {
        valid = ValidateAssumedMaster(assumed, index);
        if (!valid.ok()) return valid;
        // Absent and null mean the same ("not stored"), so null is not sent.
        if (!assumed.is_null()) {
          std::string_view assumed_bytes = MemberSpan(item_bytes, "assumedMasterState");
          if (assumed_bytes.empty()) {
            return ItemError(index, "escaped member names are not supported");
          }
          push_item->set_assumed_master_state(assumed_bytes.data(), assumed_bytes.size());
        }
      }
    }
    ++index;
  }
  return absl::OkStatus();
}

}  // namespace roomsync

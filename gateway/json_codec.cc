#include "gateway/json_codec.h"

#include <simdjson.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/log.h"

namespace roomsync {
namespace {

// Epochs are server-made identifiers; a longer one is not ours.
constexpr size_t kMaxEpochBytes = 128;

absl::Status BadCheckpoint() {
  return absl::InvalidArgumentError(
      R"(checkpoint must be the JSON object {"seq":N,"epoch":"E"} the server handed out)");
}

template <typename Documents>
void AppendDocumentArray(std::string& out, const Documents& documents, bool with_collection) {
  out += '[';
  bool first = true;
  for (const auto& document : documents) {
    if (!first) out += ',';
    first = false;
    AppendDocument(out, *document, with_collection);
  }
  out += ']';
}

std::vector<const v1::Document*> Pointers(
    const google::protobuf::RepeatedPtrField<v1::Document>& documents) {
  std::vector<const v1::Document*> pointers;
  pointers.reserve(documents.size());
  for (const v1::Document& document : documents) pointers.push_back(&document);
  return pointers;
}

size_t TotalJsonBytes(const google::protobuf::RepeatedPtrField<v1::Document>& documents) {
  size_t bytes = 0;
  for (const v1::Document& document : documents) bytes += document.json().size() + 96;
  return bytes;
}

}  // namespace

absl::StatusOr<std::optional<v1::Checkpoint>> ParseCheckpoint(std::string_view json) {
  if (json.empty() || json == "null") return std::optional<v1::Checkpoint>();
  if (json.size() > 512) return BadCheckpoint();
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(json.data(), json.size(), true).get_object().get(object)) {
    return BadCheckpoint();
  }
  int64_t seq = 0;
  std::string_view epoch;
  if (object["seq"].get_int64().get(seq) || seq < 0) return BadCheckpoint();
  if (object["epoch"].get_string().get(epoch) || epoch.size() > kMaxEpochBytes) {
    return BadCheckpoint();
  }
  if (epoch.empty()) {
    if (seq != 0) return BadCheckpoint();
    return std::optional<v1::Checkpoint>();
  }
  v1::Checkpoint checkpoint;
  checkpoint.set_seq(seq);
  checkpoint.set_epoch(std::string(epoch));
  // Optional (docs/api.md, Compaction): handed out by pulls of a room whose
  // tombstones were compacted.
  if (simdjson::dom::element compacted; !object["compacted"].get(compacted)) {
    int64_t value = 0;
    if (compacted.get_int64().get(value) || value < 0) return BadCheckpoint();
    checkpoint.set_compacted(value);
  }
  return std::optional<v1::Checkpoint>(std::move(checkpoint));
}

void AppendCheckpoint(std::string& out, const v1::Checkpoint& checkpoint, bool with_digest) {
  absl::StrAppend(&out, R"({"seq":)", checkpoint.seq(), R"(,"epoch":")");
  AppendJsonEscaped(out, checkpoint.epoch());
  out += '"';
  if (checkpoint.compacted() > 0) absl::StrAppend(&out, R"(,"compacted":)", checkpoint.compacted());
  if (with_digest && checkpoint.has_digest()) {
    // 16 hex digits, as storage/document_digest.h's FormatDigest: a JSON
    // number could not carry 64 bits to JavaScript.
    absl::StrAppend(&out, R"(,"digest":")", absl::StrFormat("%016x", checkpoint.digest()), "\"");
  }
  out += '}';
}

std::string CheckpointJson(const v1::Checkpoint& checkpoint) {
  std::string out;
  AppendCheckpoint(out, checkpoint);
  return out;
}

void AppendDocument(std::string& out, const v1::Document& document, bool with_collection) {
  const std::string& json = document.json();
  if (!with_collection) {
    out += json;
    return;
  }
  // Stored objects are minified, so '{' is the first byte; tolerate leading
  // whitespace anyway rather than corrupt a response.
  size_t open = json.find('{');
  if (open == std::string::npos) {
    out += json;
    return;
  }
  size_t next = json.find_first_not_of(" \t\r\n", open + 1);
  bool empty_object = next != std::string::npos && json[next] == '}';
  out.append(json, 0, open + 1);
  out += R"("_collection":")";
  AppendJsonEscaped(out, document.collection());
  out += '"';
  if (!empty_object) out += ',';
  out.append(json, open + 1, std::string::npos);
}

void AppendChangesBody(std::string& out, std::span<const v1::Document* const> documents,
                       const v1::Checkpoint& checkpoint, bool with_collection) {
  out += R"({"documents":)";
  AppendDocumentArray(out, documents, with_collection);
  out += R"(,"checkpoint":)";
  AppendCheckpoint(out, checkpoint, /*with_digest=*/with_collection);
  out += '}';
}

std::string EncodePullBody(const v1::PullResponse& response, bool with_collection) {
  std::string out;
  out.reserve(TotalJsonBytes(response.documents()) + 64);
  std::vector<const v1::Document*> documents = Pointers(response.documents());
  AppendChangesBody(out, documents, response.checkpoint(), with_collection);
  if (response.reset()) {
    // Additive to PROTOCOL.md: present only when the pull started over.
    out.pop_back();
    out += R"(,"reset":true})";
  }
  return out;
}

std::string EncodeHistoryBody(const v1::HistoryResponse& response, bool with_collection) {
  std::string out;
  out.reserve(TotalJsonBytes(response.documents()) + 64);
  out += R"({"documents":)";
  AppendDocumentArray(out, Pointers(response.documents()), with_collection);
  out += R"(,"next":)";
  if (response.has_next()) {
    AppendCheckpoint(out, response.next());
  } else {
    out += "null";
  }
  out += '}';
  return out;
}

std::string EncodePushBody(const v1::PushResponse& response) {
  std::string out;
  out.reserve(TotalJsonBytes(response.conflicts()) + 32);
  out += R"({"success":true,"conflicts":)";
  // A push names one collection, so conflicts need no "_collection".
  AppendDocumentArray(out, Pointers(response.conflicts()), false);
  out += '}';
  return out;
}

}  // namespace roomsync

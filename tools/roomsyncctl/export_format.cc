#include "tools/roomsyncctl/export_format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "simdjson.h"

namespace roomsync::ctl {
namespace {

// A fresh parser per call: import is bound by the server and the disk, and
// a line holds at most one document.
absl::StatusOr<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser,
                                                  std::string_view line) {
  simdjson::dom::object object;
  if (parser.parse(line.data(), line.size(), /*realloc_if_needed=*/true).get(object)) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  return object;
}

absl::StatusOr<std::string> StringMember(simdjson::dom::object object, const char* name) {
  std::string_view value;
  if (object[name].get(value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be a string"));
  }
  return std::string(value);
}

absl::StatusOr<int64_t> IntMember(simdjson::dom::object object, const char* name) {
  int64_t value;
  if (object[name].get(value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be an integer"));
  }
  return value;
}

}  // namespace

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string FormatHeader(const ExportHeaderLine& header) {
  std::string line = absl::StrCat("{\"room\":", JsonString(header.room), ",\"epoch\":",
                                  JsonString(header.epoch), ",\"seq\":", header.seq);
  if (header.compacted_through > 0) {
    absl::StrAppend(&line, ",\"compacted_through\":", header.compacted_through);
  }
  line += "}\n";
  return line;
}

std::string FormatDocument(const ExportDocumentLine& d) {
  return absl::StrCat("{\"collection\":", JsonString(d.collection), ",\"id\":", JsonString(d.id),
                      ",\"seq\":", d.seq, ",\"timestamp\":", d.timestamp,
                      ",\"deleted\":", d.deleted ? "true" : "false", ",\"data\":\"",
                      absl::Base64Escape(d.data), "\"}\n");
}

absl::StatusOr<ExportHeaderLine> ParseHeader(std::string_view line) {
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::object> object = ParseObject(parser, line);
  if (!object.ok()) return object.status();
  ExportHeaderLine header;
  absl::StatusOr<std::string> room = StringMember(*object, "room");
  if (!room.ok()) return room.status();
  absl::StatusOr<std::string> epoch = StringMember(*object, "epoch");
  if (!epoch.ok()) return epoch.status();
  absl::StatusOr<int64_t> seq = IntMember(*object, "seq");
  if (!seq.ok()) return seq.status();
  int64_t compacted_through = 0;
  if (simdjson::dom::element member; !object->at_key("compacted_through").get(member)) {
    absl::StatusOr<int64_t> value = IntMember(*object, "compacted_through");
    if (!value.ok()) return value.status();
    compacted_through = *value;
  }
  return ExportHeaderLine{*std::move(room), *std::move(epoch), *seq, compacted_through};
}

absl::StatusOr<ExportDocumentLine> ParseDocument(std::string_view line) {
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::object> object = ParseObject(parser, line);
  if (!object.ok()) return object.status();
  ExportDocumentLine d;
  absl::StatusOr<std::string> collection = StringMember(*object, "collection");
  if (!collection.ok()) return collection.status();
  absl::StatusOr<std::string> id = StringMember(*object, "id");
  if (!id.ok()) return id.status();
  absl::StatusOr<int64_t> seq = IntMember(*object, "seq");
  if (!seq.ok()) return seq.status();
  absl::StatusOr<int64_t> timestamp = IntMember(*object, "timestamp");
  if (!timestamp.ok()) return timestamp.status();
  bool deleted;
  if ((*object)["deleted"].get(deleted)) {
    return absl::InvalidArgumentError("\"deleted\" must be a boolean");
  }
  absl::StatusOr<std::string> data64 = StringMember(*object, "data");
  if (!data64.ok()) return data64.status();
  std::string data;
  if (!absl::Base64Unescape(*data64, &data)) {
    return absl::InvalidArgumentError("\"data\" is not base64");
  }
  return ExportDocumentLine{*std::move(collection), *std::move(id), *seq, *timestamp, deleted,
                            std::move(data)};
}

}  // namespace roomsync::ctl

// The JSONL file of `roomsyncctl export` and `import` (docs/operations.md):
//
//   {"room":"lobby","epoch":"9f...","seq":42}                      header
//   (with "compacted_through":N after "seq" once tombstones were compacted)
//   {"collection":"messages","id":"m1","seq":3,"timestamp":1700000000000,
//    "deleted":false,"data":"eyJpZCI6Im0xIiwi..."}                  per document
//
// `data` is the stored bytes in standard base64 (RFC 4648 §4, padded):
// they are usually JSON but need not be (and whitespace or key order must
// survive), so they are never re-encoded as JSON. Documents come in
// ascending seq order. Lines end with '\n'.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_EXPORT_FORMAT_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_EXPORT_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync::ctl {

struct ExportHeaderLine {
  std::string room;
  std::string epoch;
  int64_t seq = 0;
  // Written only when > 0, so the export of a room never compacted is the
  // same as before compaction existed.
  int64_t compacted_through = 0;
};

struct ExportDocumentLine {
  std::string collection;
  std::string id;
  int64_t seq = 0;
  int64_t timestamp = 0;
  bool deleted = false;
  std::string data;  // the stored bytes, decoded
};

// A JSON string literal (quotes included) of valid UTF-8 `text`, byte for
// byte what JavaScript's JSON.stringify writes for it (the Durable Object
// import's AAD depends on that).
std::string JsonString(std::string_view text);

std::string FormatHeader(const ExportHeaderLine& header);      // with '\n'
std::string FormatDocument(const ExportDocumentLine& document);  // with '\n'

// One line without its '\n'. kInvalidArgument says what is wrong.
absl::StatusOr<ExportHeaderLine> ParseHeader(std::string_view line);
absl::StatusOr<ExportDocumentLine> ParseDocument(std::string_view line);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_EXPORT_FORMAT_H_

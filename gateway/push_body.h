// Parsing a push body (PROTOCOL.md "POST …/replicate/push"): a JSON array
// whose items are documents or RxDB push rows
// {"newDocumentState":{…},"assumedMasterState":{…}|null}.
#ifndef ROOMSYNC_GATEWAY_PUSH_BODY_H_
#define ROOMSYNC_GATEWAY_PUSH_BODY_H_

#include <string_view>

#include "absl/status/status.h"
#include "protocol/document_envelope.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

// Validates the whole batch (UTF-8 JSON text as RFC 8259's grammar allows
// it, escapes of lone UTF-16 surrogates such as "\ud83c" included; an array,
// item count, per-document size and depth, each document's envelope) and
// appends one PushItem per item to `request`. Each document keeps the
// client's bytes minus insignificant whitespace, escapes unchanged. An id
// must decode to Unicode text without U+0000 (so no lone surrogate escape).
// kInvalidArgument names the first bad item (for bytes that are not UTF-8:
// the item and the byte offset) without quoting it; `request` is then
// unspecified.
absl::Status ParsePushBody(std::string_view body, const DocumentLimits& limits,
                           v1::PushRequest* request);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_PUSH_BODY_H_

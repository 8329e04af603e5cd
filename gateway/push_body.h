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

// Validates the whole batch (well-formed UTF-8 JSON, an array, item count,
// per-document size and depth, each document's envelope) and appends one
// PushItem per item to `request`. Each document keeps the client's bytes
// minus insignificant whitespace. kInvalidArgument names the first bad item
// without quoting it; `request` is then unspecified.
absl::Status ParsePushBody(std::string_view body, const DocumentLimits& limits,
                           v1::PushRequest* request);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_PUSH_BODY_H_

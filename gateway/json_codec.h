// The JSON the gateway writes and the checkpoint it reads. Documents are
// never re-encoded: their stored bytes are spliced into the response (with
// "_collection" spliced in front when a read spans collections).
#ifndef ROOMSYNC_GATEWAY_JSON_CODEC_H_
#define ROOMSYNC_GATEWAY_JSON_CODEC_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

// Parses a client's checkpoint {"seq":N,"epoch":"E"}. Empty text, "null"
// and {"seq":0,"epoch":""} mean the beginning (nullopt). kInvalidArgument
// for anything else that is not such an object.
absl::StatusOr<std::optional<v1::Checkpoint>> ParseCheckpoint(std::string_view json);

// Appends {"seq":N,"epoch":"E"}.
// with_digest false leaves the digest out: it covers every collection, so
// a read of one collection must not hand it on.
void AppendCheckpoint(std::string& out, const v1::Checkpoint& checkpoint,
                      bool with_digest = true);
std::string CheckpointJson(const v1::Checkpoint& checkpoint);

// Appends the stored object; with `with_collection`, "_collection":"<name>"
// becomes its first member.
void AppendDocument(std::string& out, const v1::Document& document, bool with_collection);

// {"documents":[…],"checkpoint":{…}}
void AppendChangesBody(std::string& out, std::span<const v1::Document* const> documents,
                       const v1::Checkpoint& checkpoint, bool with_collection);
std::string EncodePullBody(const v1::PullResponse& response, bool with_collection);
// {"documents":[newest first…],"next":{…}|null}
std::string EncodeHistoryBody(const v1::HistoryResponse& response, bool with_collection);
// {"success":true,"conflicts":[…]}
std::string EncodePushBody(const v1::PushResponse& response);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_JSON_CODEC_H_

// The bytes of the SSE stream (PROTOCOL.md "…/replicate/pull/stream").
#ifndef ROOMSYNC_GATEWAY_SSE_FRAMES_H_
#define ROOMSYNC_GATEWAY_SSE_FRAMES_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

inline constexpr std::string_view kKeepAliveFrame = ": keep-alive\n\n";
inline constexpr std::string_view kResyncFrame = "data: \"RESYNC\"\n\n";

// id: {"seq":N,"epoch":"E"}\ndata: {"documents":[…],"checkpoint":{…}}\n\n
std::string EncodeChangeFrame(std::span<const v1::Document* const> documents,
                              const v1::Checkpoint& checkpoint, bool with_collection);

// The documents of `batch` a session filtering on `collection` (empty = all)
// receives, limited to seq > `after_seq`.
std::vector<const v1::Document*> SelectDocuments(const v1::ChangeBatch& batch,
                                                 std::string_view collection, int64_t after_seq);

// The response head that opens a stream, with the given extra headers.
std::string EncodeStreamHead(
    const std::vector<std::pair<std::string_view, std::string>>& extra_headers);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_SSE_FRAMES_H_

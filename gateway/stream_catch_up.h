// The catch-up of an SSE session that came with a checkpoint: Pull pages
// from the checkpoint and send each as one event until a page comes back
// short (the store's head is reached, which is at or beyond the fan-out's
// live head), then RoomFanout::FinishCatchUp switches the session to live.
// A catch-up larger than max_sse_catch_up_documents, a failed pull or an
// epoch change ends the session with RESYNC.
#ifndef ROOMSYNC_GATEWAY_STREAM_CATCH_UP_H_
#define ROOMSYNC_GATEWAY_STREAM_CATCH_UP_H_

#include <memory>

namespace roomsync {

struct GatewayContext;
class RoomFanout;
class SseSession;

void StartStreamCatchUp(GatewayContext& context, std::shared_ptr<RoomFanout> fanout,
                        std::shared_ptr<SseSession> session);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_STREAM_CATCH_UP_H_

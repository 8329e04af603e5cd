// One Watch call (roomsync.proto): many rooms' change streams multiplexed
// on one gRPC bidirectional stream, for a gateway that carries every room
// it serves from this node on one call instead of one Subscribe per room.
//
// Each subscribed room is a ChangeSubscriber of its Room, feeding a queue
// shared by the whole call; one write is in flight at a time. Bounds: a
// room with max_room_queue events queued, or whose next event would take
// the call's queued bytes past send_window_bytes, gets Resync alone (its
// subscription ends; the others go on), so neither one busy room nor a
// slow reader makes memory grow; a call holds at most max_rooms rooms.
#ifndef ROOMSYNC_SERVICES_ROOM_WATCH_STREAM_H_
#define ROOMSYNC_SERVICES_ROOM_WATCH_STREAM_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace grpc {
class CallbackServerContext;
template <class Request, class Response>
class ServerBidiReactor;
}  // namespace grpc

namespace roomsync {
namespace v1 {
class WatchRequest;
class WatchEvent;
}  // namespace v1

class Room;

struct WatchLimits {
  size_t max_rooms = 1 << 20;
  size_t max_room_queue = 1024;
  size_t send_window_bytes = 16 << 20;
};

// Whether `room` may be watched on the call now: OK, FAILED_PRECONDITION
// when another node serves it (*owner set to its address when known),
// UNAVAILABLE while draining, or the refusal (auth, bad name).
using WatchAdmission = std::function<absl::Status(grpc::CallbackServerContext& context,
                                                  const std::string& room, std::string* owner)>;
using WatchRoomLookup = std::function<std::shared_ptr<Room>(const std::string& room)>;
// Runs a task on the rooms' executor (Room::SubscribeNow's threads).
using WatchPost = std::function<void(std::function<void()> task)>;

// Returns the reactor gRPC drives; it deletes itself when the call is done.
grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>* StartWatchStream(
    grpc::CallbackServerContext* context, WatchAdmission admit, WatchRoomLookup rooms,
    WatchPost post, WatchLimits limits);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_WATCH_STREAM_H_

// One Subscribe call: a gRPC write reactor fed by a room. The room pushes
// shared, already-encoded events into a bounded queue; one write is in
// flight at a time; a subscriber that falls max_queue events behind gets
// Resync and the stream ends (bounded memory, never a silent gap).
#ifndef ROOMSYNC_SERVICES_ROOM_SUBSCRIBE_STREAM_H_
#define ROOMSYNC_SERVICES_ROOM_SUBSCRIBE_STREAM_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "services/room/room.h"

namespace grpc {
class CallbackServerContext;
template <class Response>
class ServerWriteReactor;
}  // namespace grpc

namespace roomsync {
namespace v1 {
class SubscribeEvent;
}  // namespace v1

// Starts a subscription to `room` for `collection` and returns the reactor
// gRPC drives; it deletes itself when the call is done.
grpc::ServerWriteReactor<v1::SubscribeEvent>* StartSubscribeStream(
    std::shared_ptr<Room> room, std::string collection, std::optional<ClientCheckpoint> from,
    size_t max_queue);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_SUBSCRIBE_STREAM_H_

// The receiving end of a room's change stream (a Subscribe call). The room
// calls these under its lock, in commit order: implementations only queue
// and never block.
#ifndef ROOMSYNC_SERVICES_ROOM_CHANGE_SUBSCRIBER_H_
#define ROOMSYNC_SERVICES_ROOM_CHANGE_SUBSCRIBER_H_

#include <memory>
#include <string>
#include <string_view>

#include "storage/store.h"

namespace roomsync {

class CommittedBatch;

// OnResync's reason when the room's shard left this node (handed over or
// lost): the subscriber may continue on the new owner from its last
// checkpoint, without a gap.
inline constexpr std::string_view kRoomMovedReason = "room moved to another node";

class ChangeSubscriber {
 public:
  virtual ~ChangeSubscriber() = default;

  // Only changes of this collection are wanted; empty = every collection.
  virtual const std::string& collection() const = 0;

  // Committed changes (catch-up first, then live). Returns false when the
  // subscriber is gone or gave up (it then ends its stream itself); the room
  // drops it.
  virtual bool OnChanges(const std::shared_ptr<const CommittedBatch>& batch) = 0;

  // Catch-up is complete: everything from here on is live.
  virtual void OnLive(const RoomHead& head) = 0;

  // The room cannot serve this subscriber exactly any more (catch-up too
  // large, epoch changed, room reloaded, store error); the room has dropped
  // it. The client must pull from its last checkpoint.
  virtual void OnResync(std::string_view reason) = 0;

  // The service is draining: end the stream cleanly.
  virtual void OnClose() = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_CHANGE_SUBSCRIBER_H_

// The room service's unary calls as a C++ interface, for a gateway in the
// same process as the room service (the single node `roomsync`): the
// gateway calls the service directly, with no in-process gRPC channel, no
// serialisation of the request and no hop through gRPC's threads. The
// split topology keeps gRPC; both reach the same code in the service
// (RoomSyncService), which implements this interface as well as the RPCs.
//
// Each call answers exactly once through `done`, on any thread, as the
// RPC would: `status` carries the protocol's error code (error_codes.h),
// and `owner` names the room's owner when the call was refused as sent to
// the wrong node (FAILED_PRECONDITION) and the owner is known, else "".
// The caller keeps `request` and `response` alive until `done` runs. The
// caller has authenticated its client: these calls are not authorized
// again (the in-process channel's rule, room_auth.h).
#ifndef ROOMSYNC_PROTOCOL_DIRECT_ROOM_CALLS_H_
#define ROOMSYNC_PROTOCOL_DIRECT_ROOM_CALLS_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace roomsync {
namespace v1 {
class PushRequest;
class PushResponse;
class PullRequest;
class PullResponse;
class HistoryRequest;
class HistoryResponse;
class PutSnapshotRequest;
class PutSnapshotResponse;
class GetSnapshotRequest;
class GetSnapshotResponse;
}  // namespace v1

class DirectRoomCalls {
 public:
  using Done = absl::AnyInvocable<void(absl::Status status, std::string owner) &&>;

  virtual ~DirectRoomCalls() = default;

  virtual void Call(const v1::PushRequest& request, v1::PushResponse* response, Done done) = 0;
  virtual void Call(const v1::PullRequest& request, v1::PullResponse* response, Done done) = 0;
  virtual void Call(const v1::HistoryRequest& request, v1::HistoryResponse* response,
                    Done done) = 0;
  virtual void Call(const v1::PutSnapshotRequest& request, v1::PutSnapshotResponse* response,
                    Done done) = 0;
  virtual void Call(const v1::GetSnapshotRequest& request, v1::GetSnapshotResponse* response,
                    Done done) = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_PROTOCOL_DIRECT_ROOM_CALLS_H_

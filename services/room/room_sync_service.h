// The RoomSync gRPC API (proto/roomsync/v1/roomsync.proto) on the callback
// API: no thread per call; every call hands its work to a Room and is
// finished from the room's completion.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_SYNC_SERVICE_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_SYNC_SERVICE_H_

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "protocol/direct_room_calls.h"
#include "roomsync/v1/roomsync.grpc.pb.h"
#include "services/room/room_config.h"

namespace roomsync {

class RoomCallAuthorizer;
enum class RoomCall;
class RoomRegistry;
class RoomMetrics;
class ShardLeaseKeeper;

// Two transports, one body per call: the gRPC methods authorize their
// caller and run the same Call() that a gateway in this process reaches
// directly (DirectRoomCalls).
class RoomSyncService final : public v1::RoomSync::CallbackService, public DirectRoomCalls {
 public:
  // `authorizer` decides every call first (room_auth.h); it must outlive
  // the service.
  // `leases` (may be null: every room is served here) must outlive it too.
  RoomSyncService(const RoomServiceConfig& config, RoomRegistry& rooms, RoomMetrics& metrics,
                  const RoomCallAuthorizer& authorizer, ShardLeaseKeeper* leases = nullptr)
      : config_(config), rooms_(rooms), metrics_(metrics), authorizer_(authorizer),
        leases_(leases) {}

  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* context,
                                 const v1::PushRequest* request,
                                 v1::PushResponse* response) override;
  grpc::ServerUnaryReactor* Pull(grpc::CallbackServerContext* context,
                                 const v1::PullRequest* request,
                                 v1::PullResponse* response) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* context,
                                    const v1::HistoryRequest* request,
                                    v1::HistoryResponse* response) override;
  grpc::ServerWriteReactor<v1::SubscribeEvent>* Subscribe(
      grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) override;
  grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* context) override;

  // Encrypted snapshots (docs/api.md, "Snapshots").
  grpc::ServerUnaryReactor* PutSnapshot(grpc::CallbackServerContext* context,
                                        const v1::PutSnapshotRequest* request,
                                        v1::PutSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* GetSnapshot(grpc::CallbackServerContext* context,
                                        const v1::GetSnapshotRequest* request,
                                        v1::GetSnapshotResponse* response) override;

  // DirectRoomCalls: the unary calls without gRPC (their callers have
  // authorized their clients).
  void Call(const v1::PushRequest& request, v1::PushResponse* response, Done done) override;
  void Call(const v1::PullRequest& request, v1::PullResponse* response, Done done) override;
  void Call(const v1::HistoryRequest& request, v1::HistoryResponse* response,
            Done done) override;
  void Call(const v1::PutSnapshotRequest& request, v1::PutSnapshotResponse* response,
            Done done) override;
  void Call(const v1::GetSnapshotRequest& request, v1::GetSnapshotResponse* response,
            Done done) override;

  // New calls are refused with UNAVAILABLE from now on.
  void StopAccepting() { accepting_ = false; }
  // Waits until every accepted push has been answered, at most `timeout`.
  bool AwaitPushes(absl::Duration timeout);

 private:
  void PushAnswered();
  // An RPC: authorizes the caller for `kind`, then Call().
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, RoomCall kind,
                                  const Request* request, Response* response);
  // OK when this node holds the room's shard (or serves every room); else
  // FAILED_PRECONDITION (the proto's "wrong owner") with *owner the owner's
  // address when known ("" otherwise), which the RPCs send in the trailing
  // metadata (protocol/error_codes.h kOwnerMetadataKey).
  absl::Status CheckOwner(const std::string& room, std::string* owner);
  // Answers `done` and returns true when the node is draining or does not
  // own the room.
  bool Refused(const std::string& room, Done& done);

  const RoomServiceConfig config_;
  RoomRegistry& rooms_;
  RoomMetrics& metrics_;
  const RoomCallAuthorizer& authorizer_;
  ShardLeaseKeeper* const leases_;
  std::atomic<bool> accepting_{true};
  absl::Mutex mu_;
  int pushes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_SYNC_SERVICE_H_

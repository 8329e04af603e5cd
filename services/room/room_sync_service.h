// The RoomSync gRPC API (proto/roomsync/v1/roomsync.proto) on the callback
// API: no thread per call; every call hands its work to a Room and is
// finished from the room's completion.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_SYNC_SERVICE_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_SYNC_SERVICE_H_

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "roomsync/v1/roomsync.grpc.pb.h"
#include "services/room/room_config.h"

namespace roomsync {

class RoomCallAuthorizer;
class RoomRegistry;
class RoomMetrics;
class ShardLeaseKeeper;

class RoomSyncService final : public v1::RoomSync::CallbackService {
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

  // New calls are refused with UNAVAILABLE from now on.
  void StopAccepting() { accepting_ = false; }
  // Waits until every accepted push has been answered, at most `timeout`.
  bool AwaitPushes(absl::Duration timeout);

 private:
  void PushAnswered();
  // OK when this node holds the room's shard (or serves every room); else
  // FAILED_PRECONDITION (the proto's "wrong owner"), with the owner's
  // address in the trailing metadata (protocol/error_codes.h
  // kOwnerMetadataKey) for the caller to re-route.
  absl::Status CheckOwner(grpc::CallbackServerContext* context, const std::string& room);

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

// The RoomCluster gRPC API (proto/roomsync/v1/roomsync.proto): gateways ask
// any room node which node serves which shard, and route by the answer.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_CLUSTER_SERVICE_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_CLUSTER_SERVICE_H_

#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {

class RoomCallAuthorizer;
class Store;

class RoomClusterService final : public v1::RoomCluster::CallbackService {
 public:
  // Both must outlive the service.
  RoomClusterService(Store& store, const RoomCallAuthorizer& authorizer)
      : store_(store), authorizer_(authorizer) {}

  // Reads the lease table (a small query, made on each call: gateways ask
  // about once a second and on a wrong-owner answer).
  grpc::ServerUnaryReactor* ShardOwners(grpc::CallbackServerContext* context,
                                        const v1::ShardOwnersRequest* request,
                                        v1::ShardOwnersResponse* response) override;

 private:
  Store& store_;
  const RoomCallAuthorizer& authorizer_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_CLUSTER_SERVICE_H_

// roomsync.v1.RoomAdmin (proto/roomsync/v1/roomsync_admin.proto): the
// operators' API of a room node, behind roomsyncctl. It reads and writes
// the Store directly, beside the rooms' write paths: exports read one
// snapshot, imports are one transaction into a new or empty room (a
// racing push either lands first, and the import is refused, or fails its
// fence afterwards and its room reloads), and after an import the room in
// memory is told to reload.
//
// Every call is authorised with RoomCallAuthorizer::AuthorizeAdmin (an
// "admin"-scoped token, or auth off), never by the public API's rules.
// This uses gRPC's synchronous API: calls are rare, and the streams are
// easier to bound with blocking reads and writes than with reactors.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_ADMIN_SERVICE_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_ADMIN_SERVICE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "roomsync/v1/roomsync_admin.grpc.pb.h"
#include "services/room/room_config.h"
#include "storage/store.h"

namespace roomsync {

class RoomCallAuthorizer;
class RoomRegistry;
class ShardLeaseKeeper;

class RoomAdminService final : public v1::RoomAdmin::Service {
 public:
  // The most bytes of document data one ImportRoom holds in memory: the
  // import is one transaction, so it is buffered whole.
  static constexpr size_t kMaxImportBytes = size_t{1} << 30;

  // `leases`: null without shard leases; with them, imports are refused
  // for rooms of shards this node does not hold (their owner's room would
  // not know of the import).
  // `drain_node`: DrainNode's work on this node (room_server.cc: stop the
  // lease keeper with release, turn gRPC health NOT_SERVING); called on a
  // gRPC thread, it may block until the shards are released.
  RoomAdminService(Store& store, RoomRegistry& rooms, const RoomServiceConfig& config,
                   const RoomCallAuthorizer& authorizer, const ShardLeaseKeeper* leases,
                   std::function<absl::Status()> drain_node)
      : store_(store),
        rooms_(rooms),
        config_(config),
        authorizer_(authorizer),
        leases_(leases),
        drain_node_(std::move(drain_node)) {}

  grpc::Status ListRooms(grpc::ServerContext* context, const v1::ListRoomsRequest* request,
                         v1::ListRoomsResponse* response) override;
  grpc::Status ShowRoom(grpc::ServerContext* context, const v1::ShowRoomRequest* request,
                        v1::ShowRoomResponse* response) override;
  grpc::Status ExportRoom(grpc::ServerContext* context, const v1::ExportRoomRequest* request,
                          grpc::ServerWriter<v1::ExportRoomResponse>* writer) override;
  grpc::Status ImportRoom(grpc::ServerContext* context,
                          grpc::ServerReader<v1::ImportRoomRequest>* reader,
                          v1::ImportRoomResponse* response) override;
  grpc::Status CheckRoom(grpc::ServerContext* context, const v1::CheckRoomRequest* request,
                         v1::CheckRoomResponse* response) override;
  grpc::Status CompactRoom(grpc::ServerContext* context, const v1::CompactRoomRequest* request,
                           v1::CompactRoomResponse* response) override;
  grpc::Status ListShards(grpc::ServerContext* context, const v1::ListShardsRequest* request,
                          v1::ListShardsResponse* response) override;
  grpc::Status DrainNode(grpc::ServerContext* context, const v1::DrainNodeRequest* request,
                         v1::DrainNodeResponse* response) override;
  grpc::Status CountSubscribers(grpc::ServerContext* context,
                                const v1::CountSubscribersRequest* request,
                                v1::CountSubscribersResponse* response) override;

 private:
  // Owner and subscribers of `info`'s room; `leases`: the lease table
  // (empty without leases), `now_ms` the clock that judges expiry.
  void FillPlacement(const std::vector<ShardLease>& leases, int64_t now_ms,
                     v1::RoomInfo* info) const;
  // The lease table for FillPlacement: empty without shard leases.
  absl::StatusOr<std::vector<ShardLease>> LeasesForPlacement() const;

  Store& store_;
  RoomRegistry& rooms_;
  const RoomServiceConfig& config_;
  const RoomCallAuthorizer& authorizer_;
  const ShardLeaseKeeper* leases_;
  const std::function<absl::Status()> drain_node_;
};

// The problems CheckRoom reports for `summary`, one sentence each; empty
// when every invariant the stored rows can show holds. `above_head`: up to
// a few documents with a seq above the head's last_seq, to name them;
// `last_seq_held`: a document has the head's last_seq.
// Stored documents keep only each key's newest state, so holes below
// last_seq (the seqs of replaced states) are normal and not reported.
std::vector<std::string> RoomProblems(const RoomSummary& summary,
                                      const std::vector<StoredDocument>& above_head,
                                      bool last_seq_held);

// The problems of the lease table's rows, one sentence each: an epoch below
// 1 (epochs start at 1 and only grow), a shard outside 0..shard_count-1, a
// lease without an owner. `only_shard` >= 0: that shard's row only (the
// shard of a room CheckRoom looks at).
// What the schema cannot show is not checked: the table keeps each
// shard's current epoch only (no history to be monotonic against), and
// neither commits nor room heads record the lease epoch they were fenced
// with (the fence checks it at commit time), so no stored epoch can be
// compared with a shard's current one.
std::vector<std::string> LeaseProblems(const std::vector<ShardLease>& leases, int shard_count,
                                       int only_shard = -1);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_ADMIN_SERVICE_H_

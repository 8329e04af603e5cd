#include "services/room/room_sync_service.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/log.h"
#include "protocol/error_codes.h"
#include "services/room/committed_batch.h"
#include "services/room/request_validation.h"
#include "services/room/room_auth.h"
#include "services/room/room.h"
#include "services/room/room_metrics.h"
#include "services/room/room_registry.h"
#include "services/room/shard_lease_keeper.h"
#include "cluster/shard_map.h"
#include "services/room/subscribe_stream.h"
#include "services/room/watch_stream.h"

namespace roomsync {
namespace {

grpc::Status ToGrpc(grpc::CallbackServerContext* context, const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  context->AddTrailingMetadata(std::string(kErrorCodeMetadataKey), ErrorCodeOf(status));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

const absl::Status& Draining() {
  static const absl::Status* status = new absl::Status(
      absl::UnavailableError("room service is shutting down; retry on another node"));
  return *status;
}

void SetCheckpoint(v1::Checkpoint* out, Seq seq, const std::string& epoch, Seq compacted = 0) {
  out->set_seq(seq);
  out->set_epoch(epoch);
  out->set_compacted(compacted);
}

}  // namespace

absl::Status RoomSyncService::CheckOwner(const std::string& room, std::string* owner) {
  if (leases_ == nullptr) return absl::OkStatus();
  const int shard = ShardOf(room);
  if (leases_->EpochFor(shard).has_value()) return absl::OkStatus();
  *owner = leases_->LookUpOwner(shard);
  return absl::FailedPreconditionError("this node does not serve the room's shard now; retry");
}

void RoomSyncService::PushAnswered() {
  absl::MutexLock lock(&mu_);
  --pushes_in_flight_;
}

bool RoomSyncService::AwaitPushes(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pushes_in_flight_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

// --- Unary calls: the RPCs and the direct calls share one body each -----

template <typename Request, typename Response>
grpc::ServerUnaryReactor* RoomSyncService::Serve(grpc::CallbackServerContext* context,
                                                 RoomCall kind, const Request* request,
                                                 Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Naming the owner lets the gateway send the call there at once; without
  // it the client gets 503 and retries.
  Done done = [context, reactor](absl::Status status, std::string owner) {
    if (!owner.empty()) context->AddTrailingMetadata(std::string(kOwnerMetadataKey), owner);
    reactor->Finish(ToGrpc(context, status));
  };
  if (absl::Status allowed = authorizer_.Authorize(*context, request->room(), kind);
      !allowed.ok()) {
    std::move(done)(std::move(allowed), "");
  } else {
    Call(*request, response, std::move(done));
  }
  return reactor;
}

grpc::ServerUnaryReactor* RoomSyncService::Push(grpc::CallbackServerContext* context,
                                                const v1::PushRequest* request,
                                                v1::PushResponse* response) {
  return Serve(context, RoomCall::kPush, request, response);
}

grpc::ServerUnaryReactor* RoomSyncService::Pull(grpc::CallbackServerContext* context,
                                                const v1::PullRequest* request,
                                                v1::PullResponse* response) {
  return Serve(context, RoomCall::kPull, request, response);
}

grpc::ServerUnaryReactor* RoomSyncService::History(grpc::CallbackServerContext* context,
                                                   const v1::HistoryRequest* request,
                                                   v1::HistoryResponse* response) {
  return Serve(context, RoomCall::kHistory, request, response);
}

grpc::ServerUnaryReactor* RoomSyncService::PutSnapshot(grpc::CallbackServerContext* context,
                                                       const v1::PutSnapshotRequest* request,
                                                       v1::PutSnapshotResponse* response) {
  return Serve(context, RoomCall::kPutSnapshot, request, response);
}

grpc::ServerUnaryReactor* RoomSyncService::GetSnapshot(grpc::CallbackServerContext* context,
                                                       const v1::GetSnapshotRequest* request,
                                                       v1::GetSnapshotResponse* response) {
  return Serve(context, RoomCall::kGetSnapshot, request, response);
}

// Refuses the call unless this node takes calls for `room` now: draining,
// or not the shard's owner (naming the owner when known).
bool RoomSyncService::Refused(const std::string& room, Done& done) {
  if (!accepting_) {
    std::move(done)(Draining(), "");
    return true;
  }
  std::string owner;
  if (absl::Status status = CheckOwner(room, &owner); !status.ok()) {
    std::move(done)(std::move(status), std::move(owner));
    return true;
  }
  return false;
}

void RoomSyncService::Call(const v1::PushRequest& request, v1::PushResponse* response,
                           Done done) {
  std::string owner;
  if (absl::Status status = CheckOwner(request.room(), &owner); !status.ok()) {
    return std::move(done)(std::move(status), std::move(owner));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) return std::move(done)(Draining(), "");
    ++pushes_in_flight_;
  }
  absl::StatusOr<PushPlan> plan = PlanPush(request, config_, absl::Now());
  if (!plan.ok()) {
    metrics_.CountPush(request.items_size(), false);
    std::move(done)(plan.status(), "");
    PushAnswered();
    return;
  }
  size_t documents = plan->items.size();
  rooms_.Get(request.room())
      ->Push(std::move(*plan), [this, &request, response, documents,
                                done = std::move(done)](absl::StatusOr<PushOutcome> outcome) mutable {
        metrics_.CountPush(documents, outcome.ok());
        if (outcome.ok()) {
          for (const SharedDocument& doc : outcome->conflicts) ToProto(*doc, response->add_conflicts());
          response->set_accepted(outcome->accepted);
          SetCheckpoint(response->mutable_checkpoint(), outcome->head.last_seq, outcome->head.epoch);
        } else {
          Log(LogLevel::kWarning, "push_failed",
              {{"room", request.room()},
               {"code", absl::StatusCodeToString(outcome.status().code())},
               {"documents", static_cast<int64_t>(documents)}});
        }
        std::move(done)(outcome.status(), "");
        PushAnswered();
      });
}

void RoomSyncService::Call(const v1::PullRequest& request, v1::PullResponse* response,
                           Done done) {
  if (Refused(request.room(), done)) return;
  if (absl::Status s = ValidateReadTarget(request.room(), request.collection(), config_); !s.ok()) {
    return std::move(done)(std::move(s), "");
  }
  absl::StatusOr<std::optional<ClientCheckpoint>> checkpoint =
      ReadCheckpoint(request.has_checkpoint(), request.checkpoint(), "checkpoint");
  if (!checkpoint.ok()) return std::move(done)(checkpoint.status(), "");
  absl::StatusOr<int> limit = ReadPageSize(request.batch_size(), "batch_size");
  if (!limit.ok()) return std::move(done)(limit.status(), "");

  ReadRequest read{request.collection(), std::move(*checkpoint), *limit};
  rooms_.Get(request.room())
      ->Pull(std::move(read), [response, done = std::move(done)](
                                  absl::StatusOr<ReadResult> result) mutable {
        if (result.ok()) {
          for (const SharedDocument& doc : result->documents) ToProto(*doc, response->add_documents());
          SetCheckpoint(response->mutable_checkpoint(), result->checkpoint->seq,
                        result->checkpoint->epoch, result->checkpoint->compacted);
          if (result->checkpoint->digest.has_value()) {
            response->mutable_checkpoint()->set_digest(*result->checkpoint->digest);
          }
          response->set_reset(result->reset);
        }
        std::move(done)(result.status(), "");
      });
}

void RoomSyncService::Call(const v1::HistoryRequest& request, v1::HistoryResponse* response,
                           Done done) {
  if (Refused(request.room(), done)) return;
  if (absl::Status s = ValidateReadTarget(request.room(), request.collection(), config_); !s.ok()) {
    return std::move(done)(std::move(s), "");
  }
  absl::StatusOr<std::optional<ClientCheckpoint>> before =
      ReadCheckpoint(request.has_before(), request.before(), "before");
  if (!before.ok()) return std::move(done)(before.status(), "");
  absl::StatusOr<int> limit = ReadPageSize(request.limit(), "limit");
  if (!limit.ok()) return std::move(done)(limit.status(), "");

  ReadRequest read{request.collection(), std::move(*before), *limit};
  rooms_.Get(request.room())
      ->History(std::move(read), [response, done = std::move(done)](
                                     absl::StatusOr<ReadResult> result) mutable {
        if (result.ok()) {
          for (const SharedDocument& doc : result->documents) ToProto(*doc, response->add_documents());
          if (result->checkpoint.has_value()) {
            SetCheckpoint(response->mutable_next(), result->checkpoint->seq,
                          result->checkpoint->epoch);
          }
          SetCheckpoint(response->mutable_head(), result->head.last_seq, result->head.epoch,
                        result->head.compacted_through);
        }
        std::move(done)(result.status(), "");
      });
}

void RoomSyncService::Call(const v1::PutSnapshotRequest& request,
                           v1::PutSnapshotResponse* response, Done done) {
  if (Refused(request.room(), done)) return;
  absl::StatusOr<RoomSnapshot> snapshot = ValidateSnapshot(request, config_);
  if (!snapshot.ok()) return std::move(done)(snapshot.status(), "");
  rooms_.Get(request.room())
      ->PutSnapshot(*std::move(snapshot), request.compact(),
                    [&request, response, done = std::move(done)](
                        absl::StatusOr<SnapshotOutcome> outcome) mutable {
                      if (outcome.ok()) {
                        SetCheckpoint(response->mutable_checkpoint(), outcome->seq, outcome->epoch);
                        response->set_bytes(outcome->bytes);
                        response->set_created_ms(outcome->created_ms);
                        if (outcome->compaction.has_value()) {
                          response->set_compacted_removed(outcome->compaction->removed);
                          response->set_compacted_through(outcome->compaction->compacted_through);
                        }
                      } else {
                        // Never the snapshot's bytes: only its size.
                        Log(LogLevel::kWarning, "snapshot_put_failed",
                            {{"room", request.room()},
                             {"code", absl::StatusCodeToString(outcome.status().code())},
                             {"bytes", static_cast<int64_t>(request.snapshot().size())}});
                      }
                      std::move(done)(outcome.status(), "");
                    });
}

void RoomSyncService::Call(const v1::GetSnapshotRequest& request,
                           v1::GetSnapshotResponse* response, Done done) {
  if (Refused(request.room(), done)) return;
  if (absl::Status s = ValidateReadTarget(request.room(), "", config_); !s.ok()) {
    return std::move(done)(std::move(s), "");
  }
  rooms_.Get(request.room())
      ->NewestSnapshot([response, done = std::move(done)](
                           absl::StatusOr<std::optional<RoomSnapshot>> snapshot) mutable {
        absl::Status status = snapshot.status();
        if (snapshot.ok() && !snapshot->has_value()) {
          status = absl::NotFoundError("the room has no snapshot: pull from the beginning");
        } else if (snapshot.ok()) {
          RoomSnapshot& newest = **snapshot;
          SetCheckpoint(response->mutable_checkpoint(), newest.seq, newest.epoch);
          response->set_created_ms(newest.created_ms);
          response->set_snapshot(std::move(newest.bytes));
        }
        std::move(done)(std::move(status), "");
      });
}

// --- Streams ----------------------------------------------------------------

grpc::ServerWriteReactor<v1::SubscribeEvent>* RoomSyncService::Subscribe(
    grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) {
  absl::Status status = accepting_ ? authorizer_.Authorize(*context, request->room(), RoomCall::kSubscribe)
                                   : Draining();
  if (status.ok()) status = ValidateReadTarget(request->room(), request->collection(), config_);
  std::string owner;
  if (status.ok()) status = CheckOwner(request->room(), &owner);
  if (!owner.empty()) context->AddTrailingMetadata(std::string(kOwnerMetadataKey), owner);
  absl::StatusOr<std::optional<ClientCheckpoint>> from =
      ReadCheckpoint(request->has_checkpoint(), request->checkpoint(), "checkpoint");
  if (status.ok() && !from.ok()) status = from.status();
  if (!status.ok()) {
    // A reactor that only finishes: the callback API needs one to answer.
    class Refusal : public grpc::ServerWriteReactor<v1::SubscribeEvent> {
     public:
      explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
      void OnDone() override { delete this; }
    };
    return new Refusal(ToGrpc(context, status));
  }
  // An explicit checkpoint {seq: 0, epoch: E} still means "from the
  // beginning of E", unlike no checkpoint (live only).
  std::optional<ClientCheckpoint> start = *from;
  if (!start.has_value() && request->has_checkpoint()) start = ClientCheckpoint{0, "", 0, std::nullopt};
  return StartSubscribeStream(rooms_.Get(request->room()), request->collection(), std::move(start),
                              config_.max_subscriber_queue);
}

grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>* RoomSyncService::Watch(
    grpc::CallbackServerContext* context) {
  // Every subscribe on the call is decided as a Subscribe call would be.
  WatchAdmission admit = [this](grpc::CallbackServerContext& call, const std::string& room,
                                std::string* owner) -> absl::Status {
    if (!accepting_) return Draining();
    if (absl::Status s = authorizer_.Authorize(call, room, RoomCall::kSubscribe); !s.ok()) return s;
    if (absl::Status s = ValidateReadTarget(room, "", config_); !s.ok()) return s;
    return CheckOwner(room, owner);
  };
  WatchLimits limits;
  limits.max_room_queue = config_.max_subscriber_queue;
  return StartWatchStream(
      context, std::move(admit), [this](const std::string& room) { return rooms_.Get(room); },
      [this](std::function<void()> task) { boost::asio::post(rooms_.executor(), std::move(task)); },
      limits);
}

}  // namespace roomsync

#include "services/room/room_sync_service.h"

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

namespace roomsync {
namespace {

grpc::Status ToGrpc(grpc::CallbackServerContext* context, const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  context->AddTrailingMetadata(std::string(kErrorCodeMetadataKey), ErrorCodeOf(status));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(context, status));
  return reactor;
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

absl::Status RoomSyncService::CheckOwner(grpc::CallbackServerContext* context,
                                         const std::string& room) {
  if (leases_ == nullptr) return absl::OkStatus();
  const int shard = ShardOf(room);
  if (leases_->EpochFor(shard).has_value()) return absl::OkStatus();
  // Naming the owner lets the gateway send the call there at once; without
  // it the client gets 503 and retries.
  if (std::string owner = leases_->LookUpOwner(shard); !owner.empty()) {
    context->AddTrailingMetadata(std::string(kOwnerMetadataKey), owner);
  }
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

grpc::ServerUnaryReactor* RoomSyncService::Push(grpc::CallbackServerContext* context,
                                                const v1::PushRequest* request,
                                                v1::PushResponse* response) {
  if (absl::Status allowed = authorizer_.Authorize(*context, request->room(), RoomCall::kPush);
      !allowed.ok()) {
    return FinishNow(context, allowed);
  }
  if (absl::Status owner = CheckOwner(context, request->room()); !owner.ok()) {
    return FinishNow(context, owner);
  }
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) return FinishNow(context, Draining());
    ++pushes_in_flight_;
  }
  absl::StatusOr<PushPlan> plan = PlanPush(*request, config_, absl::Now());
  if (!plan.ok()) {
    metrics_.CountPush(request->items_size(), false);
    PushAnswered();
    return FinishNow(context, plan.status());
  }
  size_t documents = plan->items.size();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  rooms_.Get(request->room())
      ->Push(std::move(*plan), [this, context, reactor, request, response,
                                documents](absl::StatusOr<PushOutcome> outcome) {
        metrics_.CountPush(documents, outcome.ok());
        if (outcome.ok()) {
          for (const SharedDocument& doc : outcome->conflicts) ToProto(*doc, response->add_conflicts());
          response->set_accepted(outcome->accepted);
          SetCheckpoint(response->mutable_checkpoint(), outcome->head.last_seq, outcome->head.epoch);
        } else {
          Log(LogLevel::kWarning, "push_failed",
              {{"room", request->room()},
               {"code", absl::StatusCodeToString(outcome.status().code())},
               {"documents", static_cast<int64_t>(documents)}});
        }
        reactor->Finish(ToGrpc(context, outcome.status()));
        PushAnswered();
      });
  return reactor;
}

grpc::ServerUnaryReactor* RoomSyncService::Pull(grpc::CallbackServerContext* context,
                                                const v1::PullRequest* request,
                                                v1::PullResponse* response) {
  if (!accepting_) return FinishNow(context, Draining());
  if (absl::Status allowed = authorizer_.Authorize(*context, request->room(), RoomCall::kPull);
      !allowed.ok()) {
    return FinishNow(context, allowed);
  }
  if (absl::Status owner = CheckOwner(context, request->room()); !owner.ok()) {
    return FinishNow(context, owner);
  }
  if (absl::Status s = ValidateReadTarget(request->room(), request->collection(), config_); !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<std::optional<ClientCheckpoint>> checkpoint =
      ReadCheckpoint(request->has_checkpoint(), request->checkpoint(), "checkpoint");
  if (!checkpoint.ok()) return FinishNow(context, checkpoint.status());
  absl::StatusOr<int> limit = ReadPageSize(request->batch_size(), "batch_size");
  if (!limit.ok()) return FinishNow(context, limit.status());

  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ReadRequest read{request->collection(), std::move(*checkpoint), *limit};
  rooms_.Get(request->room())
      ->Pull(std::move(read), [context, reactor, response](absl::StatusOr<ReadResult> result) {
        if (result.ok()) {
          for (const SharedDocument& doc : result->documents) ToProto(*doc, response->add_documents());
          SetCheckpoint(response->mutable_checkpoint(), result->checkpoint->seq,
                        result->checkpoint->epoch, result->checkpoint->compacted);
          response->set_reset(result->reset);
        }
        reactor->Finish(ToGrpc(context, result.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* RoomSyncService::History(grpc::CallbackServerContext* context,
                                                   const v1::HistoryRequest* request,
                                                   v1::HistoryResponse* response) {
  if (!accepting_) return FinishNow(context, Draining());
  if (absl::Status allowed = authorizer_.Authorize(*context, request->room(), RoomCall::kHistory);
      !allowed.ok()) {
    return FinishNow(context, allowed);
  }
  if (absl::Status owner = CheckOwner(context, request->room()); !owner.ok()) {
    return FinishNow(context, owner);
  }
  if (absl::Status s = ValidateReadTarget(request->room(), request->collection(), config_); !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<std::optional<ClientCheckpoint>> before =
      ReadCheckpoint(request->has_before(), request->before(), "before");
  if (!before.ok()) return FinishNow(context, before.status());
  absl::StatusOr<int> limit = ReadPageSize(request->limit(), "limit");
  if (!limit.ok()) return FinishNow(context, limit.status());

  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ReadRequest read{request->collection(), std::move(*before), *limit};
  rooms_.Get(request->room())
      ->History(std::move(read), [context, reactor, response](absl::StatusOr<ReadResult> result) {
        if (result.ok()) {
          for (const SharedDocument& doc : result->documents) ToProto(*doc, response->add_documents());
          if (result->checkpoint.has_value()) {
            SetCheckpoint(response->mutable_next(), result->checkpoint->seq,
                          result->checkpoint->epoch);
          }
        }
        reactor->Finish(ToGrpc(context, result.status()));
      });
  return reactor;
}

grpc::ServerWriteReactor<v1::SubscribeEvent>* RoomSyncService::Subscribe(
    grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) {
  absl::Status status = accepting_ ? authorizer_.Authorize(*context, request->room(), RoomCall::kSubscribe)
                                   : Draining();
  if (status.ok()) status = ValidateReadTarget(request->room(), request->collection(), config_);
  if (status.ok()) status = CheckOwner(context, request->room());
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
  if (!start.has_value() && request->has_checkpoint()) start = ClientCheckpoint{0, "", 0};
  return StartSubscribeStream(rooms_.Get(request->room()), request->collection(), std::move(start),
                              config_.max_subscriber_queue);
}

}  // namespace roomsync

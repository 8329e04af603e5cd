#include "gateway/replication_handlers.h"

#include <memory>
#include <optional>

#include "absl/time/clock.h"
#include "gateway/gateway_context.h"
#include "gateway/grpc_errors.h"
#include "gateway/json_codec.h"
#include "gateway/push_body.h"
#include "protocol/names.h"

namespace roomsync {
namespace {

// One unary call's state; shared by the callback so that it lives until the
// call completes.
template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext client_context;
  Request request;
  Response response;
};

absl::StatusOr<std::optional<v1::Checkpoint>> CheckpointParam(const QueryParams& query,
                                                             std::string_view name) {
  const std::string* text = query.Find(name);
  if (text == nullptr) return std::optional<v1::Checkpoint>();
  return ParseCheckpoint(*text);
}

// Starts `method` on `call` and answers with `encode(response)` or the
// mapped error. A node that does not own the room (a shard that moved)
// refuses with FAILED_PRECONDITION before doing anything and names the
// owner: the call goes there once more.
template <typename Call, typename Start, typename Encode>
void CallRoomService(GatewayContext& context, const std::string& token, std::shared_ptr<Call> call,
                     Start start, Encode encode, ApiReply reply, bool first_attempt = true) {
  call->client_context.set_deadline(context.UnaryDeadline());
  GatewayContext::ForwardToken(call->client_context, token);
  context.grpc_calls_in_flight.fetch_add(1);
  // Every request type names its room: the call goes to the room's node.
  start(context.StubFor(call->request.room()).async(), &call->client_context, &call->request, &call->response,
      [&context, call, start, encode = std::move(encode), reply = std::move(reply),
       first_attempt, token = first_attempt ? token : std::string()](grpc::Status status) mutable {
        if (first_attempt && status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
            context.LearnOwner(call->request.room(), call->client_context)) {
          auto again = std::make_shared<Call>();
          again->request = std::move(call->request);
          CallRoomService(context, token, std::move(again), start, std::move(encode),
                          std::move(reply), /*first_attempt=*/false);
          context.grpc_calls_in_flight.fetch_sub(1);
          return;
        }
        if (status.ok()) {
          ApiResponse response;
          response.body = encode(call->response);
          reply(std::move(response));
        } else {
          reply(ErrorFromGrpc(status, call->client_context));
        }
        context.grpc_calls_in_flight.fetch_sub(1);
      });
}

}  // namespace

absl::StatusOr<std::string> OptionalCollectionParam(const QueryParams& query) {
  const std::string* collection = query.Find("collection");
  if (collection == nullptr || collection->empty()) return std::string();
  absl::Status valid = ValidateCollectionName(*collection);
  if (!valid.ok()) return valid;
  return *collection;
}

void HandlePull(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                ApiReply reply) {
  using Call = UnaryCall<v1::PullRequest, v1::PullResponse>;
  auto call = std::make_shared<Call>();
  absl::StatusOr<std::string> collection = OptionalCollectionParam(query);
  if (!collection.ok()) return reply(ErrorFromStatus(collection.status()));
  absl::StatusOr<std::optional<v1::Checkpoint>> checkpoint = CheckpointParam(query, "checkpoint");
  if (!checkpoint.ok()) return reply(ErrorFromStatus(checkpoint.status()));
  absl::StatusOr<int> batch_size = query.PageSize("batchSize", 100);
  if (!batch_size.ok()) return reply(ErrorFromStatus(batch_size.status()));

  call->request.set_room(room);
  call->request.set_collection(*collection);
  if (checkpoint->has_value()) *call->request.mutable_checkpoint() = **checkpoint;
  call->request.set_batch_size(*batch_size);
  bool with_collection = collection->empty();
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->Pull(args...); },
      [with_collection](const v1::PullResponse& response) {
        return EncodePullBody(response, with_collection);
      },
      std::move(reply));
}

void HandlePush(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                std::string_view body, ApiReply reply) {
  using Call = UnaryCall<v1::PushRequest, v1::PushResponse>;
  const std::string* collection = query.Find("collection");
  if (collection == nullptr || collection->empty()) {
    return reply(ErrorResponse(400, "invalid_argument",
                               "push needs the query parameter \"collection\""));
  }
  absl::Status valid = ValidateCollectionName(*collection);
  if (!valid.ok()) return reply(ErrorFromStatus(valid));
  auto call = std::make_shared<Call>();
  valid = ParsePushBody(body, context.config.limits, &call->request);
  if (!valid.ok()) return reply(ErrorFromStatus(valid));
  // Counted in documents, after parsing: a push of 1000 costs 1000.
  if (auto refused = context.rate_limiter.AdmitPushDocuments(
          caller.subject, caller.client_ip, static_cast<size_t>(call->request.items_size()),
          absl::Now())) {
    return reply(*std::move(refused));
  }
  call->request.set_room(room);
  call->request.set_collection(*collection);
  CallRoomService(context, caller.token, call, [](auto* api, auto... args) { api->Push(args...); },
                  [](const v1::PushResponse& response) { return EncodePushBody(response); },
                  std::move(reply));
}

void HandleHistory(GatewayContext& context, const Caller& caller, const std::string& room, const QueryParams& query,
                   ApiReply reply) {
  using Call = UnaryCall<v1::HistoryRequest, v1::HistoryResponse>;
  auto call = std::make_shared<Call>();
  absl::StatusOr<std::string> collection = OptionalCollectionParam(query);
  if (!collection.ok()) return reply(ErrorFromStatus(collection.status()));
  absl::StatusOr<std::optional<v1::Checkpoint>> before = CheckpointParam(query, "before");
  if (!before.ok()) return reply(ErrorFromStatus(before.status()));
  absl::StatusOr<int> limit = query.PageSize("limit", 100);
  if (!limit.ok()) return reply(ErrorFromStatus(limit.status()));

  call->request.set_room(room);
  call->request.set_collection(*collection);
  if (before->has_value()) *call->request.mutable_before() = **before;
  call->request.set_limit(*limit);
  bool with_collection = collection->empty();
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->History(args...); },
      [with_collection](const v1::HistoryResponse& response) {
        return EncodeHistoryBody(response, with_collection);
      },
      std::move(reply));
}

}  // namespace roomsync

#include "gateway/replication_handlers.h"

#include <memory>
#include <optional>
#include <type_traits>

#include "absl/time/clock.h"
#include "gateway/gateway_context.h"
#include "gateway/grpc_errors.h"
#include "gateway/history_pages.h"
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

// Starts `method` on `call` and answers with `encode(response)` (a body, or
// a whole ApiResponse) or the mapped error. A node that does not own the
// room (a shard that moved) refuses with FAILED_PRECONDITION before doing
// anything and names the owner: the call goes there once more.
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
          if constexpr (std::is_same_v<decltype(encode(call->response)), ApiResponse>) {
            reply(encode(call->response));
          } else {
            ApiResponse response;
            response.body = encode(call->response);
            reply(std::move(response));
          }
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
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->History(args...); },
      [room, collection = *collection](const v1::HistoryResponse& response) {
        ApiResponse answer;
        answer.body = EncodeHistoryBody(response, collection.empty());
        // Additive to PROTOCOL.md: the cacheable page of what is older,
        // where every client of the room continues with the same URLs.
        answer.body.pop_back();
        answer.body += R"(,"older":)";
        if (response.has_next() && response.next().seq() > 1 && response.has_head()) {
          answer.body += '"';
          AppendHistoryPageUrl(answer.body, room,
                               HistoryPageOf(response.head(), response.next().seq() - 1),
                               collection);
          answer.body += '"';
        } else {
          answer.body += "null";
        }
        answer.body += '}';
        // Starts at the head, which moves with every write.
        answer.headers.emplace_back("Cache-Control", "no-store");
        return answer;
      },
      std::move(reply));
}

void HandleHistoryPage(GatewayContext& context, const Caller& caller, const Route& route,
                       const QueryParams& query, std::string_view if_none_match, ApiReply reply) {
  using Call = UnaryCall<v1::HistoryRequest, v1::HistoryResponse>;
  auto no_store = [](ApiResponse response) {
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
  };
  absl::StatusOr<HistoryPageAddress> page = ParseHistoryPagePath(route.page);
  if (!page.ok()) return reply(no_store(ErrorFromStatus(page.status())));
  absl::StatusOr<std::string> collection = OptionalCollectionParam(query);
  if (!collection.ok()) return reply(no_store(ErrorFromStatus(collection.status())));

  auto call = std::make_shared<Call>();
  // One read: the documents below to + 1, one more than a block holds, so
  // the newest older document (the next page's) comes with them.
  call->request.set_room(route.room);
  call->request.set_collection(*collection);
  call->request.mutable_before()->set_seq(page->to_seq + 1);
  call->request.mutable_before()->set_epoch(page->epoch);
  call->request.set_limit(static_cast<int>(kHistoryPageSeqs) + 1);
  const HistoryCacheScope scope = context.config.public_history_cache || !context.config.jwt.has_value()
                                      ? HistoryCacheScope::kPublic
                                      : HistoryCacheScope::kPrivate;
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->History(args...); },
      [room = route.room, page = *std::move(page), collection = *collection, scope, no_store,
       if_none_match = std::string(if_none_match)](const v1::HistoryResponse& response) {
        HistoryPageState state = ClassifyHistoryPage(page, response.head());
        if (state == HistoryPageState::kOtherEpoch) {
          return no_store(ErrorResponse(
              404, "not_found",
              "this history page is of another epoch of the room (it was re-created or restored): "
              "scroll back again from /history"));
        }
        ApiResponse answer;
        answer.body = EncodeHistoryPageBody(response, room, page, collection);
        const bool cacheable = state == HistoryPageState::kComplete;
        answer.headers.emplace_back("Cache-Control", HistoryPageCacheControl(cacheable, scope));
        if (!cacheable) return answer;
        std::string etag = HistoryPageETag(room, page, collection, answer.body);
        // Caches key one room's pages by Origin too: the CORS headers
        // differ by it (cors.h).
        answer.headers.emplace_back("Vary", "Origin");
        if (!if_none_match.empty() && HistoryPageMatches(if_none_match, etag)) {
          answer.status = 304;
          answer.content_type = {};
          answer.content_length = answer.body.size();
          answer.body.clear();
        }
        answer.headers.emplace_back("ETag", std::move(etag));
        return answer;
      },
      std::move(reply));
}

}  // namespace roomsync

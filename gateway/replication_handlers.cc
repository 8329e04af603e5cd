#include "gateway/replication_handlers.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <type_traits>

#include <boost/asio/steady_timer.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "protocol/error_codes.h"
#include "gateway/gateway_context.h"
#include "protocol/direct_room_calls.h"
#include "gateway/history_pages.h"
#include "gateway/json_codec.h"
#include "gateway/push_body.h"
#include "protocol/names.h"

namespace roomsync {
namespace {

// One unary call's state; shared by the callback so that it lives until the
// call completes. The client context only for a call over gRPC.
template <typename Request, typename Response>
struct UnaryCall {
  std::optional<grpc::ClientContext> client_context;
  Request request;
  Response response;
};

// What the room node answered, read off either transport.
struct RoomAnswer {
  // With the protocol's error code when the node gave one.
  absl::Status status;
  // On FAILED_PRECONDITION: the owner the node named, if it knows one.
  std::string owner;
  // The node itself answered (else the transport failed: the node may
  // have applied the call, or not).
  bool from_node = false;
};

RoomAnswer AnswerFromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  RoomAnswer answer;
  // grpc::StatusCode and absl::StatusCode share their numbering.
  answer.status = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                               status.error_message());
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto code = trailers.find(std::string(kErrorCodeMetadataKey)); code != trailers.end()) {
    answer.status = WithErrorCode(std::move(answer.status),
                                  std::string_view(code->second.data(), code->second.size()));
    answer.from_node = true;
  }
  if (auto owner = trailers.find(std::string(kOwnerMetadataKey)); owner != trailers.end()) {
    answer.owner.assign(owner->second.data(), owner->second.size());
  }
  return answer;
}

absl::StatusOr<std::optional<v1::Checkpoint>> CheckpointParam(const QueryParams& query,
                                                             std::string_view name) {
  const std::string* text = query.Find(name);
  if (text == nullptr) return std::optional<v1::Checkpoint>();
  return ParseCheckpoint(*text);
}

// How long a call refused before the room node did anything is sent again
// (below): a planned shard move or a drain takes a few hundred ms.
constexpr absl::Duration kRefusalRetryBudget = absl::Seconds(3);
constexpr int kMaxAttempts = 12;

struct Attempts {
  int made = 0;
  absl::Time until = absl::InfiniteFuture();  // set by the first attempt
};

// A refusal the room node made before doing anything, so that sending the
// call again cannot apply anything twice: FAILED_PRECONDITION (this node
// does not, or no longer, hold the room's shard: it is between owners), or
// an UNAVAILABLE the node answered itself (draining; its store briefly
// unreachable: nothing was written). A transport UNAVAILABLE (node gone
// mid-call) is not retried: a push may have been applied.
bool RefusedBeforeDoingAnything(const RoomAnswer& answer) {
  if (answer.status.code() == absl::StatusCode::kFailedPrecondition) return true;
  return answer.status.code() == absl::StatusCode::kUnavailable && answer.from_node;
}

// Starts the call on the room's node and answers with `encode(response)`
// (a body, or a whole ApiResponse) or the mapped error. In the single node
// the call goes to the room service directly (context.direct_room_calls),
// else `start` sends it over gRPC; both answer alike. A node that does not
// own the room (a shard that moved) refuses before doing anything and
// names the owner when it knows it: the call goes there at once. Without a
// named owner (the shard is between owners) or from a draining node, the
// call is sent again after a short backoff for up to kRefusalRetryBudget,
// so that a planned move costs a wait, not a 503.
template <typename Call, typename Start, typename Encode>
void CallRoomService(GatewayContext& context, const std::string& token, std::shared_ptr<Call> call,
                     Start start, Encode encode, ApiReply reply, Attempts attempts = {}) {
  if (attempts.made == 0) {
    attempts.until = absl::Now() + std::min(kRefusalRetryBudget, context.config.grpc_deadline);
  }
  ++attempts.made;
  context.grpc_calls_in_flight.fetch_add(1);
  auto answered = [&context, call, start, encode = std::move(encode), reply = std::move(reply),
                   attempts, token](RoomAnswer answer) mutable {
    if (!answer.status.ok() && attempts.made < kMaxAttempts &&
        RefusedBeforeDoingAnything(answer)) {
      const bool rerouted = answer.status.code() == absl::StatusCode::kFailedPrecondition &&
                            context.LearnOwner(call->request.room(), answer.owner);
      const absl::Duration delay =
          rerouted ? absl::ZeroDuration()
                   : std::min(absl::Milliseconds(25) * (1 << std::min(attempts.made - 1, 4)),
                              absl::Milliseconds(400));
      if (absl::Now() + delay < attempts.until) {
        auto again = std::make_shared<Call>();
        again->request = std::move(call->request);
        if (delay == absl::ZeroDuration()) {
          CallRoomService(context, token, std::move(again), start, std::move(encode),
                          std::move(reply), attempts);
        } else {
          // Counted as in flight while it waits: Drain lets the timer run.
          context.grpc_calls_in_flight.fetch_add(1);
          auto timer = std::make_shared<boost::asio::steady_timer>(
              context.io, absl::ToChronoNanoseconds(delay));
          timer->async_wait([&context, timer, token, again = std::move(again), start,
                             encode = std::move(encode), reply = std::move(reply),
                             attempts](boost::system::error_code) mutable {
            CallRoomService(context, token, std::move(again), start, std::move(encode),
                            std::move(reply), attempts);
            context.grpc_calls_in_flight.fetch_sub(1);
          });
        }
        context.grpc_calls_in_flight.fetch_sub(1);
        return;
      }
    }
    if (answer.status.ok()) {
      if constexpr (std::is_same_v<decltype(encode(call->response)), ApiResponse>) {
        reply(encode(call->response));
      } else {
        ApiResponse response;
        response.body = encode(call->response);
        reply(std::move(response));
      }
    } else {
      reply(ErrorFromStatus(answer.status));
    }
    context.grpc_calls_in_flight.fetch_sub(1);
  };
  if (context.direct_room_calls != nullptr) {
    context.direct_room_calls->Call(
        call->request, &call->response,
        [answered = std::move(answered)](absl::Status status, std::string owner) mutable {
          answered(RoomAnswer{std::move(status), std::move(owner), true});
        });
    return;
  }
  grpc::ClientContext& client_context = call->client_context.emplace();
  client_context.set_deadline(context.UnaryDeadline());
  GatewayContext::ForwardToken(client_context, token);
  // Every request type names its room: the call goes to the room's node.
  start(context.StubFor(call->request.room()).async(), &client_context, &call->request,
        &call->response, [call, answered = std::move(answered)](grpc::Status status) mutable {
          answered(AnswerFromGrpc(status, *call->client_context));
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

namespace {

// compact=1|true asks for the covered tombstones' removal; absent, empty,
// 0 or false does not.
absl::StatusOr<bool> CompactParam(const QueryParams& query) {
  const std::string* text = query.Find("compact");
  if (text == nullptr || text->empty() || *text == "0" || *text == "false") return false;
  if (*text == "1" || *text == "true") return true;
  return absl::InvalidArgumentError("compact must be 1, true, 0 or false");
}

// Names the snapshot's version: a snapshot replaced at the same seq has
// another creation time. Cheap (no pass over the bytes).
std::string SnapshotETag(const v1::GetSnapshotResponse& response) {
  return absl::StrCat("\"snap-", response.checkpoint().seq(), "-", response.created_ms(), "-",
                      absl::string_view(response.checkpoint().epoch()).substr(0, 32), "\"");
}

bool ETagListed(std::string_view if_none_match, std::string_view etag) {
  // The few forms a client sends: the exact tag, W/ of it, or *.
  return if_none_match == "*" || if_none_match == etag ||
         (if_none_match.starts_with("W/") && if_none_match.substr(2) == etag);
}

}  // namespace

void HandlePutSnapshot(GatewayContext& context, const Caller& caller, const std::string& room,
                       const QueryParams& query, std::string body, ApiReply reply) {
  using Call = UnaryCall<v1::PutSnapshotRequest, v1::PutSnapshotResponse>;
  absl::StatusOr<std::optional<v1::Checkpoint>> checkpoint = CheckpointParam(query, "checkpoint");
  if (!checkpoint.ok()) return reply(ErrorFromStatus(checkpoint.status()));
  if (!checkpoint->has_value()) {
    return reply(ErrorResponse(
        400, "invalid_argument",
        "a snapshot needs the query parameter \"checkpoint\" ({\"seq\":N,\"epoch\":\"E\"}) of "
        "the state it holds"));
  }
  absl::StatusOr<bool> compact = CompactParam(query);
  if (!compact.ok()) return reply(ErrorFromStatus(compact.status()));
  auto call = std::make_shared<Call>();
  call->request.set_room(room);
  *call->request.mutable_checkpoint() = **checkpoint;
  call->request.set_snapshot(std::move(body));
  call->request.set_compact(*compact);
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->PutSnapshot(args...); },
      [compact = *compact](const v1::PutSnapshotResponse& response) {
        ApiResponse answer;
        answer.status = 201;
        answer.body = absl::StrCat(R"({"seq":)", response.checkpoint().seq(), R"(,"epoch":")");
        AppendJsonEscaped(answer.body, response.checkpoint().epoch());
        absl::StrAppend(&answer.body, R"(","bytes":)", response.bytes(), R"(,"created":)",
                        response.created_ms());
        if (compact) {
          absl::StrAppend(&answer.body, R"(,"compacted":{"removed":)",
                          response.compacted_removed(), R"(,"through":)",
                          response.compacted_through(), "}");
        }
        answer.body += '}';
        answer.headers.emplace_back("Cache-Control", "no-store");
        return answer;
      },
      std::move(reply));
}

void HandleGetSnapshot(GatewayContext& context, const Caller& caller, const std::string& room,
                       std::string_view if_none_match, ApiReply reply) {
  using Call = UnaryCall<v1::GetSnapshotRequest, v1::GetSnapshotResponse>;
  auto call = std::make_shared<Call>();
  call->request.set_room(room);
  CallRoomService(
      context, caller.token, call,
      [](auto* api, auto... args) { api->GetSnapshot(args...); },
      [if_none_match = std::string(if_none_match)](v1::GetSnapshotResponse& response) {
        ApiResponse answer;
        answer.content_type = "application/octet-stream";
        answer.headers.emplace_back("Roomsync-Checkpoint", CheckpointJson(response.checkpoint()));
        answer.headers.emplace_back("Roomsync-Snapshot-Created",
                                    absl::StrCat(response.created_ms()));
        // "latest" moves with every upload: revalidate each time, and a
        // client that has this one gets a 304 without the bytes.
        answer.headers.emplace_back("Cache-Control", "no-cache");
        answer.headers.emplace_back("Vary", "Origin");
        std::string etag = SnapshotETag(response);
        if (!if_none_match.empty() && ETagListed(if_none_match, etag)) {
          answer.status = 304;
          answer.content_type = {};
          answer.content_length = response.snapshot().size();
        } else {
          answer.body = std::move(*response.mutable_snapshot());
        }
        answer.headers.emplace_back("ETag", std::move(etag));
        return answer;
      },
      std::move(reply));
}

}  // namespace roomsync

#include "gateway/http_session.h"

#include <algorithm>
#include <array>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/time/clock.h"
#include "base/log.h"
#include "gateway/gateway_context.h"
#include "gateway/json_codec.h"
#include "gateway/query_params.h"
#include "gateway/readiness_probe.h"
#include "gateway/replication_handlers.h"
#include "gateway/sse_session.h"
#include "gateway/static_files.h"
#include "gateway/tls_context.h"
#include "protocol/names.h"

namespace roomsync {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }

HttpStream MakeStream(GatewayContext& context, net::ip::tcp::socket socket) {
  if (context.tls == nullptr) return HttpStream(beast::tcp_stream(std::move(socket)));
  return HttpStream(beast::tcp_stream(std::move(socket)), context.tls->Current());
}

}  // namespace

HttpSession::HttpSession(GatewayContext& context, net::ip::tcp::socket socket)
    : context_(context), stream_(MakeStream(context, std::move(socket))) {
  beast::error_code error;
  net::ip::tcp::endpoint peer = stream_.socket().remote_endpoint(error);
  client_ip_ = error ? "unknown" : ClientIpKey(peer.address());
}

HttpSession::~HttpSession() {
  if (in_flight_counted_) context_.requests_in_flight.fetch_sub(1);
}

void HttpSession::Run() {
  // The TLS handshake counts against the first head's header_timeout.
  stream_.tcp().expires_after(absl::ToChronoNanoseconds(context_.config.header_timeout));
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->stream_.async_handshake(
        [self](beast::error_code error) { self->OnHandshake(error); });
  });
}

void HttpSession::OnHandshake(beast::error_code error) {
  if (error) {
    // A plain-HTTP client on the HTTPS port, a scanner, a timeout: nothing
    // to answer in a protocol the peer speaks.
    beast::error_code ignored;
    stream_.socket().close(ignored);
    return;
  }
  ReadHead();
}

void HttpSession::ReadHead() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(context_.config.max_header_bytes));
  // The larger of the bodies any route takes; OnHead narrows it to the
  // route's before a byte of the body is read.
  parser_->body_limit(std::max(context_.config.limits.max_push_bytes,
                               context_.config.limits.max_snapshot_bytes));
  // The first head must arrive within header_timeout of the connection
  // (slowloris); later ones within idle_timeout of the previous response.
  stream_.tcp().expires_after(absl::ToChronoNanoseconds(
      first_request_ ? context_.config.header_timeout : context_.config.idle_timeout));
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code error, size_t) {
                            self->OnHead(error);
                          });
}

void HttpSession::OnHead(beast::error_code error) {
  if (error == http::error::end_of_stream || error == beast::error::timeout ||
      error == net::error::operation_aborted || error == net::error::connection_reset) {
    return CloseAfterDraining();
  }
  started_ = absl::Now();
  first_request_ = false;
  context_.requests_in_flight.fetch_add(1);
  in_flight_counted_ = true;
  if (error) return RefuseUnreadable(error);
  const auto& head = parser_->get();
  if (std::optional<ApiResponse> refused = LimitBody(); refused.has_value()) {
    route_ = Route();
    method_ = "-";
    return WriteResponse(*std::move(refused), true);
  }
  if (beast::iequals(head[http::field::expect], "100-continue") && !parser_->is_done()) {
    return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                            [self = shared_from_this()](beast::error_code error, size_t) {
                              if (error) return self->CloseAfterDraining();
                              self->ReadBody();
                            });
  }
  ReadBody();
}

std::optional<ApiResponse> HttpSession::LimitBody() {
  std::string_view path, query_text;
  SplitTarget(ToStd(parser_->get().target()), &path, &query_text);
  const bool snapshot = MatchRoute(path).kind == RouteKind::kSnapshotPut;
  const size_t limit = snapshot ? context_.config.limits.max_snapshot_bytes
                                : context_.config.limits.max_push_bytes;
  parser_->body_limit(limit);
  // A declared length over the limit is refused before any of it is read;
  // a chunked body stops at the limit (http::error::body_limit).
  if (auto length = parser_->content_length(); length && *length > limit) {
    return ErrorResponse(413, "payload_too_large",
                         snapshot ? "the body is larger than the snapshot limit"
                                  : "the body is larger than the push limit");
  }
  return std::nullopt;
}

void HttpSession::ReadBody() {
  // A body may be large (8 MiB) on a slow link: it gets the idle timeout.
  stream_.tcp().expires_after(absl::ToChronoNanoseconds(context_.config.idle_timeout));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code error, size_t) {
                     self->OnBody(error);
                   });
}

void HttpSession::OnBody(beast::error_code error) {
  if (error) return RefuseUnreadable(error);
  stream_.tcp().expires_never();
  Dispatch();
}

void HttpSession::RefuseUnreadable(beast::error_code error) {
  route_ = Route();
  method_ = "-";
  if (error == http::error::header_limit) {
    return WriteResponse(ErrorResponse(431, "invalid_argument",
                                       "the request head is larger than the limit"),
                         true);
  }
  if (error == http::error::body_limit) {
    return WriteResponse(ErrorResponse(413, "payload_too_large",
                                       "the body is larger than the limit of its endpoint"),
                         true);
  }
  if (error == beast::error::timeout) return CloseAfterDraining();
  if (error == http::error::partial_message) {
    return WriteResponse(ErrorResponse(400, "invalid_argument", "the body is truncated"), true);
  }
  WriteResponse(ErrorResponse(400, "invalid_argument", "malformed HTTP request"), true);
}

void HttpSession::Dispatch() {
  Request& request = parser_->get();
  method_ = std::string(ToStd(request.method_string()));
  origin_ = std::string(ToStd(request[http::field::origin]));
  keep_alive_ = request.keep_alive();
  std::string_view path, query_text;
  SplitTarget(ToStd(request.target()), &path, &query_text);
  route_ = MatchRoute(path, context_.static_files != nullptr);

  if (route_.kind == RouteKind::kStatic) {
    // Every method is the web root's to answer (405 but for GET and HEAD,
    // OPTIONS included: a same-origin app sends no preflight).
    StaticFiles::Request file{method_, std::string(path),
                              std::string(ToStd(request[http::field::if_none_match]))};
    return context_.static_files->Serve(
        std::move(file),
        [self = shared_from_this()](ApiResponse response) { self->Reply(std::move(response)); });
  }
  if (route_.kind == RouteKind::kNotFound) {
    return Reply(ErrorResponse(404, "not_found", "no such endpoint"));
  }
  if (request.method() == http::verb::options) {
    if (!context_.cors.IsAllowed(origin_)) {
      return Reply(ErrorResponse(403, "permission_denied", "origin not allowed"));
    }
    ApiResponse preflight;
    preflight.status = 204;
    preflight.content_type = {};
    return Reply(std::move(preflight));
  }
  if (method_ != route_.method) {
    ApiResponse response = ErrorResponse(405, "method_not_allowed", "method not allowed");
    response.allow = route_.method == "POST" ? "POST, OPTIONS" : "GET, OPTIONS";
    return Reply(std::move(response));
  }
  absl::StatusOr<QueryParams> query = QueryParams::Parse(query_text);
  if (!query.ok()) return Reply(ErrorFromStatus(query.status()));
  if (!route_.room.empty()) {
    absl::Status valid = ValidateRoomName(route_.room);
    if (!valid.ok()) return Reply(ErrorFromStatus(valid));
  }
  auto reply = [self = shared_from_this()](ApiResponse response) { self->Reply(std::move(response)); };
  std::optional<Caller> caller;
  if (!route_.room.empty()) {
    caller = Admit(*query);
    if (!caller.has_value()) return;  // refused; the reply is on its way
  }
  switch (route_.kind) {
    case RouteKind::kHealthz: {
      ApiResponse ok;
      ok.body = R"({"status":"ok"})";
      return Reply(std::move(ok));
    }
    case RouteKind::kReadyz:
      return HandleReadiness(context_, std::move(reply));
    case RouteKind::kMetrics: {
      if (!context_.config.metrics_address.empty()) {
        // Served on the metrics port only (GatewayConfig::metrics_address).
        return Reply(ErrorResponse(404, "not_found", "no such endpoint"));
      }
      ApiResponse metrics;
      metrics.body = context_.metrics.Serialize();
      metrics.content_type = "text/plain; version=0.0.4";
      return Reply(std::move(metrics));
    }
    case RouteKind::kPull:
      return HandlePull(context_, *caller, route_.room, *query, std::move(reply));
    case RouteKind::kPush:
      return HandlePush(context_, *caller, route_.room, *query, request.body(), std::move(reply));
    case RouteKind::kHistory:
      return HandleHistory(context_, *caller, route_.room, *query, std::move(reply));
    case RouteKind::kHistoryPage:
      return HandleHistoryPage(context_, *caller, route_, *query,
                               ToStd(request[http::field::if_none_match]), std::move(reply));
    case RouteKind::kStream:
      return StartStream(route_, *query, *std::move(caller));
    case RouteKind::kSnapshotPut:
      return HandlePutSnapshot(context_, *caller, route_.room, *query,
                               std::move(request.body()), std::move(reply));
    case RouteKind::kSnapshotGet:
      return HandleGetSnapshot(context_, *caller, route_.room,
                               ToStd(request[http::field::if_none_match]), std::move(reply));
    case RouteKind::kNotFound:
    case RouteKind::kStatic:
      break;
  }
}

std::optional<Caller> HttpSession::Admit(const QueryParams& query) {
  absl::Time now = absl::Now();
  if (auto refused = context_.rate_limiter.AdmitRequestFromIp(client_ip_, now)) {
    Reply(*std::move(refused));
    return std::nullopt;
  }
  const Request& request = parser_->get();
  absl::Duration leeway = context_.config.jwt ? context_.config.jwt->leeway : absl::ZeroDuration();
  absl::StatusOr<Caller> caller = AuthenticateRequest(
      context_.verifier.get(), leeway, ToStd(request[http::field::authorization]), query,
      request.method() == http::verb::get, route_.room, RouteWrites(route_.kind));
  if (!caller.ok()) {
    ApiResponse refusal = ErrorFromStatus(caller.status());
    context_.metrics.AuthRefused(refusal.status);
    Reply(std::move(refusal));
    return std::nullopt;
  }
  if (auto refused = context_.rate_limiter.AdmitRequestFromSubject(caller->subject, now)) {
    Reply(*std::move(refused));
    return std::nullopt;
  }
  caller->client_ip = client_ip_;
  return *std::move(caller);
}

void HttpSession::StartStream(const Route& route, const QueryParams& query, Caller caller) {
  SseSession::Params params;
  params.room = route.room;
  params.origin = origin_;
  absl::StatusOr<std::string> collection = OptionalCollectionParam(query);
  if (!collection.ok()) return Reply(ErrorFromStatus(collection.status()));
  params.collection = *std::move(collection);
  // EventSource resends the last id as Last-Event-ID when it reconnects; it
  // wins over the URL's checkpoint, which is the one the stream began with.
  std::string_view last_event_id = ToStd(parser_->get()["Last-Event-ID"]);
  const std::string* checkpoint_text = query.Find("checkpoint");
  std::string_view checkpoint_json =
      !last_event_id.empty() ? last_event_id
                             : (checkpoint_text ? std::string_view(*checkpoint_text) : "");
  absl::StatusOr<std::optional<v1::Checkpoint>> checkpoint = ParseCheckpoint(checkpoint_json);
  if (!checkpoint.ok()) return Reply(ErrorFromStatus(checkpoint.status()));
  params.checkpoint = *std::move(checkpoint);
  if (context_.draining.load()) {
    return Reply(ErrorResponse(503, "unavailable", "the gateway is draining"));
  }
  if (auto refused =
          context_.rate_limiter.AcquireStream(caller.subject, caller.client_ip, &params.slot)) {
    return Reply(*std::move(refused));
  }
  params.token = std::move(caller.token);
  params.deadline = caller.stream_deadline;
  FinishRequest(200);
  ReleaseInFlight();
  stream_.tcp().expires_never();
  auto session = std::make_shared<SseSession>(context_, std::move(stream_), std::move(params));
  session->Start();
  // This HttpSession (and its read buffer) ends here; bytes a client
  // pipelined after a stream request are dropped with it.
}

void HttpSession::Reply(ApiResponse response) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), response = std::move(response)]() mutable {
              self->WriteResponse(std::move(response), false);
            });
}

void HttpSession::WriteResponse(ApiResponse api, bool close_after) {
  close_after_ = close_after || !keep_alive_ || context_.draining.load();
  auto response = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(api.status), 11);
  response->set(http::field::server, "roomsync");
  if (!api.content_type.empty()) {
    response->set(http::field::content_type, {api.content_type.data(), api.content_type.size()});
  }
  if (api.retry_after_seconds > 0) {
    response->set(http::field::retry_after, std::to_string(api.retry_after_seconds));
  }
  if (!api.allow.empty()) response->set(http::field::allow, {api.allow.data(), api.allow.size()});
  if (!api.www_authenticate.empty()) {
    response->set(http::field::www_authenticate,
                  {api.www_authenticate.data(), api.www_authenticate.size()});
  }
  for (const auto& [name, value] : api.headers) {
    response->set(beast::string_view(name.data(), name.size()), value);
  }
  bool preflight = api.status == 204 && route_.kind != RouteKind::kNotFound;
  for (const auto& [name, value] : preflight ? context_.cors.PreflightHeaders(origin_)
                                             : context_.cors.ResponseHeaders(origin_)) {
    response->set(beast::string_view(name.data(), name.size()), value);
  }
  response->body() = std::move(api.body);
  response->keep_alive(!close_after_);
  response->prepare_payload();
  if (api.content_length.has_value()) response->content_length(*api.content_length);
  response_ = response;
  // Counted before the write: a client that reads this response and then
  // asks /metrics on another connection must see this request there.
  FinishRequest(api.status);
  http::async_write(stream_, *response,
                    [self = shared_from_this()](beast::error_code error, size_t) {
                      self->ReleaseInFlight();
                      self->OnWritten(!self->close_after_, error);
                    });
}

void HttpSession::FinishRequest(int status) {
  double seconds = absl::ToDoubleSeconds(absl::Now() - started_);
  context_.metrics.RecordRequest(route_.pattern, status, seconds);
  // Never the target's query (it may carry access_token) nor the body.
  Log(LogLevel::kInfo, "http_request",
      {{"method", method_},
       {"route", route_.pattern},
       {"room", route_.room},
       {"status", status},
       {"latency_ms", seconds * 1000.0}});
}

void HttpSession::ReleaseInFlight() {
  if (in_flight_counted_) {
    in_flight_counted_ = false;
    context_.requests_in_flight.fetch_sub(1);
  }
}

void HttpSession::OnWritten(bool keep_alive, beast::error_code error) {
  response_.reset();
  if (error) return CloseAfterDraining();
  if (!keep_alive) return CloseAfterDraining();
  ReadHead();
}

void HttpSession::CloseAfterDraining() {
  // Half-close, then read what the client still sends until it closes (or
  // a second passes): closing with unread bytes would send an RST that can
  // destroy the error response before the client reads it. The scratch
  // buffer is 16 KiB, not less: a client still sending a refused 9 MiB
  // body must be drained within the second (with 512-byte reads that took
  // ~18,000 reads, and under the sanitizers more than the second: the RST
  // then lost the 413, gateway_http_test's OversizedBody case).
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  buffer_.clear();
  stream_.tcp().expires_after(std::chrono::seconds(1));
  auto discard = std::make_shared<std::array<char, 16 * 1024>>();
  struct Drainer {
    std::shared_ptr<HttpSession> self;
    std::shared_ptr<std::array<char, 16 * 1024>> scratch;
    void operator()(beast::error_code error, size_t) {
      if (error) {
        beast::error_code ignored;
        self->stream_.socket().close(ignored);
        return;
      }
      self->stream_.async_read_some(net::buffer(*scratch), std::move(*this));
    }
  };
  stream_.async_read_some(net::buffer(*discard), Drainer{shared_from_this(), discard});
}

}  // namespace roomsync

// libFuzzer target: the gateway's request path on raw bytes, without
// sockets or a room service. The HTTP session is an Asio state machine, so
// this drives the same steps HttpSession::Dispatch takes, in its order:
// Beast's parser with the session's head and body limits, SplitTarget,
// MatchRoute, QueryParams, ValidateRoomName, the bearer token lookup, then
// the route's own parsing (push body, checkpoint / Last-Event-ID).
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "gateway/json_codec.h"
#include "gateway/push_body.h"
#include "gateway/query_params.h"
#include "gateway/request_auth.h"
#include "gateway/routes.h"
#include "protocol/names.h"

namespace http = boost::beast::http;

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const roomsync::DocumentLimits limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(limits.max_push_bytes);
  parser.eager(true);
  boost::beast::error_code error;
  parser.put(boost::asio::buffer(data, size), error);
  if (!error && !parser.is_done()) parser.put_eof(error);
  if (error || !parser.is_header_done()) return 0;
  const auto& request = parser.get();

  std::string_view path, query_text;
  roomsync::SplitTarget(View(request.target()), &path, &query_text);
  roomsync::Route route = roomsync::MatchRoute(path);
  auto query = roomsync::QueryParams::Parse(query_text);
  if (route.kind == roomsync::RouteKind::kNotFound || !query.ok()) return 0;
  if (!route.room.empty() && !roomsync::ValidateRoomName(route.room).ok()) return 0;
  (void)roomsync::FindBearerToken(View(request[http::field::authorization]), *query,
                                  request.method() == http::verb::get);
  switch (route.kind) {
    case roomsync::RouteKind::kPush: {
      roomsync::v1::PushRequest push;
      (void)roomsync::ParsePushBody(request.body(), limits, &push);
      break;
    }
    case roomsync::RouteKind::kStream:
      (void)roomsync::ParseCheckpoint(View(request["Last-Event-ID"]));
      [[fallthrough]];
    case roomsync::RouteKind::kPull:
    case roomsync::RouteKind::kHistory:
      if (const std::string* checkpoint = query->Find("checkpoint")) {
        (void)roomsync::ParseCheckpoint(*checkpoint);
      }
      if (const std::string* before = query->Find("before")) (void)roomsync::ParseCheckpoint(*before);
      (void)query->PageSize("batchSize", 100);
      break;
    default:
      break;
  }
  return 0;
}

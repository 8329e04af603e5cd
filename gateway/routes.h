// The URL space of the API (PROTOCOL.md): every room endpoint under both
// /v1/rooms/{room}/ and /api/room/{room}/, plus health and metrics.
#ifndef ROOMSYNC_GATEWAY_ROUTES_H_
#define ROOMSYNC_GATEWAY_ROUTES_H_

#include <string>
#include <string_view>

namespace roomsync {

enum class RouteKind { kNotFound, kPull, kPush, kStream, kHistory, kHealthz, kReadyz, kMetrics };

struct Route {
  RouteKind kind = RouteKind::kNotFound;
  // As written in the URL; validated by the handler (ValidateRoomName).
  std::string room;
  // The pattern, for logs and metric labels (a bounded set).
  std::string_view pattern = "unmatched";
  // The one method the route accepts besides OPTIONS.
  std::string_view method;
};

Route MatchRoute(std::string_view path);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_ROUTES_H_

// The URL space of the API (PROTOCOL.md): every room endpoint under both
// /v1/rooms/{room}/ and /api/room/{room}/, plus health and metrics. With a
// web root (--web, static_files.h) every other path is a static file.
#ifndef ROOMSYNC_GATEWAY_ROUTES_H_
#define ROOMSYNC_GATEWAY_ROUTES_H_

#include <string>
#include <string_view>

namespace roomsync {

enum class RouteKind {
  kNotFound,
  kPull,
  kPush,
  kStream,
  kHistory,
  kHistoryPage,  // a cacheable page of history (history_pages.h)
  kSnapshotPut,  // POST .../snapshots: store an encrypted snapshot
  kSnapshotGet,  // GET .../snapshots/latest: the newest one
  kHealthz,
  kReadyz,
  kMetrics,
  kStatic,  // a file of the web root (GET and HEAD)
};

struct Route {
  RouteKind kind = RouteKind::kNotFound;
  // As written in the URL; validated by the handler (ValidateRoomName).
  std::string room;
  // The pattern, for logs and metric labels (a bounded set).
  std::string_view pattern = "unmatched";
  // The one method the route accepts besides OPTIONS.
  std::string_view method;
  // kHistoryPage: the path after ".../history/pages/", as written (parsed
  // by ParseHistoryPagePath).
  std::string page;
};

// Whether the route writes the room: its token needs write (push, snapshot
// upload).
bool RouteWrites(RouteKind kind);

// `static_files`: a web root is served, so a path outside the API's
// (IsApiPath) is kStatic instead of kNotFound.
Route MatchRoute(std::string_view path, bool static_files = false);

// The paths the API owns, endpoints or not: /v1 and /api and everything
// under them, /healthz, /readyz, /metrics. An unknown one stays a JSON 404
// "no such endpoint" with a web root too.
bool IsApiPath(std::string_view path);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_ROUTES_H_

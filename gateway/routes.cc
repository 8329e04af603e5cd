#include "gateway/routes.h"

#include <array>

namespace roomsync {
namespace {

struct RoomEndpoint {
  std::string_view suffix;
  RouteKind kind;
  std::string_view method;
  std::string_view v1_pattern;
  std::string_view api_pattern;
};

constexpr std::string_view kHistoryPagesSuffix = "/history/pages/";

constexpr std::array<RoomEndpoint, 6> kRoomEndpoints = {{
    {"/replicate/pull", RouteKind::kPull, "GET", "/v1/rooms/{room}/replicate/pull",
     "/api/room/{room}/replicate/pull"},
    {"/replicate/push", RouteKind::kPush, "POST", "/v1/rooms/{room}/replicate/push",
     "/api/room/{room}/replicate/push"},
    {"/replicate/pull/stream", RouteKind::kStream, "GET",
     "/v1/rooms/{room}/replicate/pull/stream", "/api/room/{room}/replicate/pull/stream"},
    {"/history", RouteKind::kHistory, "GET", "/v1/rooms/{room}/history",
     "/api/room/{room}/history"},
    // Encrypted snapshots (docs/api.md, "Snapshots"): additive to PROTOCOL.md.
    {"/snapshots", RouteKind::kSnapshotPut, "POST", "/v1/rooms/{room}/snapshots",
     "/api/room/{room}/snapshots"},
    {"/snapshots/latest", RouteKind::kSnapshotGet, "GET", "/v1/rooms/{room}/snapshots/latest",
     "/api/room/{room}/snapshots/latest"},
}};

}  // namespace

bool RouteWrites(RouteKind kind) {
  return kind == RouteKind::kPush || kind == RouteKind::kSnapshotPut;
}

bool IsApiPath(std::string_view path) {
  return path == "/v1" || path.starts_with("/v1/") || path == "/api" ||
         path.starts_with("/api/") || path == "/healthz" || path == "/readyz" ||
         path == "/metrics";
}

Route MatchRoute(std::string_view path, bool static_files) {
  if (static_files && !IsApiPath(path)) return {RouteKind::kStatic, "", "static", "GET", {}};
  Route route;
  if (path == "/healthz") return {RouteKind::kHealthz, "", "/healthz", "GET", {}};
  if (path == "/readyz") return {RouteKind::kReadyz, "", "/readyz", "GET", {}};
  if (path == "/metrics") return {RouteKind::kMetrics, "", "/metrics", "GET", {}};
  bool v1 = path.starts_with("/v1/rooms/");
  if (!v1 && !path.starts_with("/api/room/")) return route;
  // Both prefixes are 10 characters long.
  std::string_view rest = path.substr(10);
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return route;
  std::string_view suffix = rest.substr(slash);
  if (suffix.starts_with(kHistoryPagesSuffix)) {
    route.kind = RouteKind::kHistoryPage;
    route.room = std::string(rest.substr(0, slash));
    route.page = std::string(suffix.substr(kHistoryPagesSuffix.size()));
    route.pattern =
        v1 ? "/v1/rooms/{room}/history/pages/{page}" : "/api/room/{room}/history/pages/{page}";
    route.method = "GET";
    return route;
  }
  for (const RoomEndpoint& endpoint : kRoomEndpoints) {
    if (suffix != endpoint.suffix) continue;
    route.kind = endpoint.kind;
    route.room = std::string(rest.substr(0, slash));
    route.pattern = v1 ? endpoint.v1_pattern : endpoint.api_pattern;
    route.method = endpoint.method;
    return route;
  }
  return route;
}

}  // namespace roomsync

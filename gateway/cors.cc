#include "gateway/cors.h"

#include <algorithm>

namespace roomsync {

CorsPolicy::CorsPolicy(std::vector<std::string> allowed_origins)
    : allowed_origins_(std::move(allowed_origins)) {}

bool CorsPolicy::IsAllowed(std::string_view origin) const {
  if (allowed_origins_.empty()) return true;
  return std::find(allowed_origins_.begin(), allowed_origins_.end(), origin) !=
         allowed_origins_.end();
}

std::vector<std::pair<std::string_view, std::string>> CorsPolicy::ResponseHeaders(
    std::string_view origin) const {
  std::vector<std::pair<std::string_view, std::string>> headers;
  if (origin.empty()) {
    if (allowed_origins_.empty()) headers.emplace_back("Access-Control-Allow-Origin", "*");
    return headers;
  }
  if (!IsAllowed(origin)) return headers;  // the browser blocks the response
  // Echo the origin (not "*") so that credentialed requests work too; Vary
  // keeps caches from serving one origin's answer to another.
  headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
  headers.emplace_back("Vary", "Origin");
  // Roomsync-Checkpoint and ETag: a snapshot's (docs/api.md, "Snapshots").
  headers.emplace_back("Access-Control-Expose-Headers",
                       "Retry-After, Roomsync-Checkpoint, Roomsync-Snapshot-Created, ETag");
  return headers;
}

std::vector<std::pair<std::string_view, std::string>> CorsPolicy::PreflightHeaders(
    std::string_view origin) const {
  std::vector<std::pair<std::string_view, std::string>> headers = ResponseHeaders(origin);
  headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  headers.emplace_back("Access-Control-Allow-Headers",
                       "Authorization, Content-Type, Last-Event-ID");
  // Browsers cap this (Chrome: 2 h); 10 minutes spares most preflights.
  headers.emplace_back("Access-Control-Max-Age", "600");
  return headers;
}

}  // namespace roomsync

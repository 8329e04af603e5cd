// CORS (PROTOCOL.md "Authentication and errors"): browsers call the API
// from other origins, so every response names the allowed origin and
// preflights name the methods and headers explicitly (a "*" does not cover
// Authorization in the Fetch standard).
#ifndef ROOMSYNC_GATEWAY_CORS_H_
#define ROOMSYNC_GATEWAY_CORS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace roomsync {

class CorsPolicy {
 public:
  // Empty `allowed_origins` allows any origin (development).
  explicit CorsPolicy(std::vector<std::string> allowed_origins);

  bool IsAllowed(std::string_view origin) const;

  // Headers for an ordinary response to a request from `origin` (empty when
  // the request had no Origin header).
  std::vector<std::pair<std::string_view, std::string>> ResponseHeaders(
      std::string_view origin) const;

  // Headers for the answer to a preflight (OPTIONS) from an allowed origin.
  std::vector<std::pair<std::string_view, std::string>> PreflightHeaders(
      std::string_view origin) const;

 private:
  std::vector<std::string> allowed_origins_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_CORS_H_

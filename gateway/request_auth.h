// Who is calling the HTTP API (PROTOCOL.md "Authentication and errors"):
// the bearer token from `Authorization: Bearer <JWT>` or, for GET only,
// `?access_token=<JWT>` (EventSource cannot set headers), verified by the
// JwtVerifier and checked against the room and the access asked for.
#ifndef ROOMSYNC_GATEWAY_REQUEST_AUTH_H_
#define ROOMSYNC_GATEWAY_REQUEST_AUTH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace roomsync {

class JwtVerifier;
class QueryParams;

// The authenticated caller of one request.
struct Caller {
  // Forwarded to the room service as call credentials; empty when auth is
  // off. Never logged.
  std::string token;
  // The token's "sub" (the key of per-subject limits); empty when auth is
  // off.
  std::string subject;
  // When an open stream must end: the token's "exp" plus the leeway.
  absl::Time stream_deadline = absl::InfiniteFuture();
  // The peer's per-IP limit key (ClientIpKey), set by the HTTP session.
  std::string client_ip;
};

// The token of a request, without "Bearer ". kUnauthenticated when there
// is none, the Authorization header is not a Bearer credential, a non-GET
// request carries it in the query, or header and query both carry one
// (RFC 6750 §2: one method per request).
absl::StatusOr<std::string_view> FindBearerToken(std::string_view authorization_header,
                                                 const QueryParams& query, bool is_get);

// Authenticates the request and authorizes `room` (and writing, when
// `write`). `verifier` null means auth is off: everyone may do everything.
// kUnauthenticated (401) for a missing or bad token, kPermissionDenied
// (403) for a valid token that does not grant the room or the write.
absl::StatusOr<Caller> AuthenticateRequest(const JwtVerifier* verifier, absl::Duration leeway,
                                           std::string_view authorization_header,
                                           const QueryParams& query, bool is_get,
                                           std::string_view room, bool write);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_REQUEST_AUTH_H_

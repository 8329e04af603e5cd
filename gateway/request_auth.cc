#include "gateway/request_auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "auth/jwt_verifier.h"
#include "base/string_view.h"
#include "gateway/query_params.h"

namespace roomsync {

absl::StatusOr<std::string_view> FindBearerToken(std::string_view authorization_header,
                                                 const QueryParams& query, bool is_get) {
  const std::string* from_query = query.Find("access_token");
  if (from_query != nullptr && !is_get) {
    return absl::UnauthenticatedError(
        "access_token in the URL is accepted on GET only; send Authorization: Bearer");
  }
  if (!authorization_header.empty()) {
    if (from_query != nullptr) {
      return absl::UnauthenticatedError(
          "send the token either in the Authorization header or in access_token, not both");
    }
    // The scheme is case-insensitive (RFC 7235 §2.1); one space follows it.
    constexpr std::string_view kScheme = "bearer ";
    if (authorization_header.size() <= kScheme.size() ||
        !absl::EqualsIgnoreCase(ToAbsl(authorization_header.substr(0, kScheme.size())),
                                ToAbsl(kScheme))) {
      return absl::UnauthenticatedError("the Authorization header is not a Bearer token");
    }
    return ToStd(absl::StripAsciiWhitespace(ToAbsl(authorization_header.substr(kScheme.size()))));
  }
  if (from_query != nullptr && !from_query->empty()) return std::string_view(*from_query);
  return absl::UnauthenticatedError("a bearer token is required");
}

absl::StatusOr<Caller> AuthenticateRequest(const JwtVerifier* verifier, absl::Duration leeway,
                                           std::string_view authorization_header,
                                           const QueryParams& query, bool is_get,
                                           std::string_view room, bool write) {
  Caller caller;
  if (verifier == nullptr) return caller;
  absl::StatusOr<std::string_view> token = FindBearerToken(authorization_header, query, is_get);
  if (!token.ok()) return token.status();
  absl::StatusOr<Grant> grant = verifier->Verify(*token);
  if (!grant.ok()) return grant.status();
  if (absl::Status allowed = Authorize(*grant, room, write); !allowed.ok()) return allowed;
  caller.token = std::string(*token);
  caller.subject = std::move(grant->subject);
  caller.stream_deadline = grant->expires + leeway;
  return caller;
}

}  // namespace roomsync

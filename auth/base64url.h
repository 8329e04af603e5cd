// Strict base64url (RFC 4648 §5) as JWS compact serialization uses it
// (RFC 7515 §2): no padding, no whitespace, no other alphabet. Thread-safe.
#ifndef ROOMSYNC_AUTH_BASE64URL_H_
#define ROOMSYNC_AUTH_BASE64URL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync {

// Decodes `text`. kInvalidArgument (without quoting the input) if it holds
// a character outside [A-Za-z0-9_-], '=' padding, an impossible length
// (4n+1), or non-zero bits after the last byte. The last rule makes the
// encoding canonical: one byte string has exactly one accepted spelling, so
// a token cannot be altered into a second valid form.
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

// Encodes `bytes` without padding.
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_BASE64URL_H_

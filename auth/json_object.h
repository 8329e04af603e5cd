// Internal to roomsync_auth: parsing the small JSON objects of JOSE (token
// header, claims, JWKS) with simdjson's DOM API.
#ifndef ROOMSYNC_AUTH_JSON_OBJECT_H_
#define ROOMSYNC_AUTH_JSON_OBJECT_H_

#include <simdjson.h>

#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync::auth_internal {

// Parses `json` with `parser` as one JSON object whose member names are all
// distinct. Duplicates are refused (RFC 7515 §5.2 allows that): two parsers
// that each pick a different "alg" or "sub" out of one token is a classic
// way past a check. The object lives until `parser` parses again.
// kInvalidArgument naming `what`, never quoting the input.
absl::StatusOr<simdjson::dom::object> ParseUniqueObject(simdjson::dom::parser& parser,
                                                        std::string_view json,
                                                        std::string_view what);

// The same check for an object nested inside a parsed document.
absl::Status CheckUniqueMembers(simdjson::dom::object object, std::string_view what);

}  // namespace roomsync::auth_internal

#endif  // ROOMSYNC_AUTH_JSON_OBJECT_H_

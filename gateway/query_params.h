// The request target: path and decoded query parameters. Written by hand
// because Boost 1.74 has no Boost.URL (1.81+) and the grammar we need is
// small: split on '&' and '=', percent-decode, '+' is a space.
#ifndef ROOMSYNC_GATEWAY_QUERY_PARAMS_H_
#define ROOMSYNC_GATEWAY_QUERY_PARAMS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace roomsync {

// Splits "/path?query" into its two parts (query without the '?').
void SplitTarget(std::string_view target, std::string_view* path, std::string_view* query);

// Decodes %XX escapes (and '+' as space when `plus_is_space`).
// kInvalidArgument for a malformed escape.
absl::StatusOr<std::string> PercentDecode(std::string_view text, bool plus_is_space);

class QueryParams {
 public:
  // kInvalidArgument for a malformed escape.
  static absl::StatusOr<QueryParams> Parse(std::string_view query);

  // The first value of `name`, or nullptr.
  const std::string* Find(std::string_view name) const;

  // An integer parameter in [1, 1000], `default_value` when absent or empty.
  // kInvalidArgument otherwise.
  absl::StatusOr<int> PageSize(std::string_view name, int default_value) const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_QUERY_PARAMS_H_

#include "auth/json_object.h"

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace roomsync::auth_internal {

absl::Status CheckUniqueMembers(simdjson::dom::object object, std::string_view what) {
  std::vector<std::string_view> names;
  names.reserve(object.size());
  for (simdjson::dom::key_value_pair member : object) names.push_back(member.key);
  std::sort(names.begin(), names.end());
  if (std::adjacent_find(names.begin(), names.end()) != names.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), " has a duplicate member name"));
  }
  return absl::OkStatus();
}

absl::StatusOr<simdjson::dom::object> ParseUniqueObject(simdjson::dom::parser& parser,
                                                        std::string_view json,
                                                        std::string_view what) {
  simdjson::dom::element root;
  // realloc_if_needed=true: simdjson copies the input into its padded
  // buffer, so a std::string_view into any buffer is safe.
  simdjson::error_code error = parser.parse(json.data(), json.size(), true).get(root);
  if (error == simdjson::UTF8_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not valid UTF-8"));
  }
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not valid JSON"));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not a JSON object"));
  }
  if (absl::Status unique = CheckUniqueMembers(object, what); !unique.ok()) return unique;
  return object;
}

}  // namespace roomsync::auth_internal

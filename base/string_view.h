// Debian 12's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own class and does not convert to or from
// std::string_view implicitly. Our APIs use std::string_view; these two
// functions cross the boundary without copying.
#ifndef ROOMSYNC_BASE_STRING_VIEW_H_
#define ROOMSYNC_BASE_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace roomsync {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_STRING_VIEW_H_

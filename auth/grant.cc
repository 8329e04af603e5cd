#include "auth/grant.h"

namespace roomsync {

bool Grant::AllowsRoom(std::string_view room) const {
  for (const std::string& pattern : rooms) {
    std::string_view p = pattern;
    if (!p.empty() && p.back() == '*') {
      if (room.substr(0, p.size() - 1) == p.substr(0, p.size() - 1)) return true;
    } else if (p == room) {
      return true;
    }
  }
  return false;
}

absl::Status Authorize(const Grant& grant, std::string_view room, bool write) {
  if (!grant.AllowsRoom(room)) {
    return absl::PermissionDeniedError("the token does not grant access to this room");
  }
  if (write && !grant.can_write) {
    return absl::PermissionDeniedError("the token's scope does not include write");
  }
  return absl::OkStatus();
}

}  // namespace roomsync

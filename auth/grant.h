// What a verified token allows: which rooms, and whether it may write.
#ifndef ROOMSYNC_AUTH_GRANT_H_
#define ROOMSYNC_AUTH_GRANT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace roomsync {

struct Grant {
  std::string subject;  // "sub": the key for per-subject rate limits
  // "rooms": exact room names, or "prefix*" for every room starting with
  // prefix ("*" alone is every room). A '*' anywhere else is literal.
  std::vector<std::string> rooms;
  bool can_write = false;  // "scope" holds "write"
  // "exp" as issued. The verifier accepts the token until expires + leeway;
  // an open stream should end then too.
  absl::Time expires = absl::InfinitePast();
  // "scope" holds "admin": the operators' API (RoomAdmin, roomsyncctl).
  // Orthogonal to rooms and write: an admin token grants no room through
  // the public API unless it also lists it.
  bool admin = false;

  bool AllowsRoom(std::string_view room) const;
};

// OK if `grant` covers `room` (and `write`, when asked for). Otherwise
// kPermissionDenied (HTTP 403): the caller is known but not allowed. The
// message names what is missing, not the room list of the token.
absl::Status Authorize(const Grant& grant, std::string_view room, bool write);

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_GRANT_H_

#include "protocol/names.h"

#include "absl/strings/str_cat.h"

namespace roomsync {
namespace {

bool IsRoomChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '~' || c == '-';
}

}  // namespace

absl::Status ValidateRoomName(std::string_view room) {
  if (room.empty() || room.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("room name must be 1-128 characters, got ", room.size()));
  }
  if (room == "." || room == "..") {
    return absl::InvalidArgumentError("room name must not be \".\" or \"..\"");
  }
  for (char c : room) {
    if (!IsRoomChar(c)) {
      return absl::InvalidArgumentError(
          "room name may only contain characters of [A-Za-z0-9._~-]");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCollectionName(std::string_view collection) {
  if (collection.empty() || collection.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection name must be 1-64 characters, got ", collection.size()));
  }
  if (collection[0] < 'a' || collection[0] > 'z') {
    return absl::InvalidArgumentError("collection name must start with a letter a-z");
  }
  for (char c : collection) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(
          "collection name may only contain characters of [a-z0-9_]");
    }
  }
  return absl::OkStatus();
}

}  // namespace roomsync

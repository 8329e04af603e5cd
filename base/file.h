// Small whole-file reads for configuration (certificates, keys): read at
// start-up or on reload, never on a request path.
#ifndef ROOMSYNC_BASE_FILE_H_
#define ROOMSYNC_BASE_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync {

// The file's bytes; kInvalidArgument "cannot read <what> <path>" when it
// cannot be opened or is empty. `what` names the setting (e.g. a flag).
absl::StatusOr<std::string> ReadNonEmptyFile(const std::string& path, std::string_view what);

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_FILE_H_

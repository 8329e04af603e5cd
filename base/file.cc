#include "base/file.h"

#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace roomsync {

absl::StatusOr<std::string> ReadNonEmptyFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.is_open() || contents.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", ToAbsl(what), " ", path));
  }
  return contents;
}

}  // namespace roomsync

#include "gateway/static_path.h"

namespace roomsync {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::Status NotFound() { return absl::NotFoundError("no such file"); }

}  // namespace

absl::StatusOr<std::string> StaticFilePath(std::string_view url_path) {
  if (!url_path.starts_with('/')) return NotFound();
  std::string decoded;
  decoded.reserve(url_path.size());
  for (size_t i = 1; i < url_path.size(); ++i) {
    char c = url_path[i];
    if (c == '%') {
      if (i + 2 >= url_path.size()) return NotFound();
      int high = HexValue(url_path[i + 1]);
      int low = HexValue(url_path[i + 2]);
      if (high < 0 || low < 0) return NotFound();
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (c == '\0' || c == '\\') return NotFound();
    decoded += c;
  }
  // Every segment is checked after decoding: "%2e%2e" is "..", "%2f"
  // separates like '/'.
  size_t start = 0;
  while (true) {
    size_t slash = decoded.find('/', start);
    std::string_view segment =
        std::string_view(decoded).substr(start, slash == std::string::npos ? slash : slash - start);
    bool last = slash == std::string::npos;
    if (segment.empty() && !last) return NotFound();
    if (segment.starts_with('.')) return NotFound();
    if (last) break;
    start = slash + 1;
  }
  if (decoded.empty() || decoded.ends_with('/')) decoded += "index.html";
  return decoded;
}

}  // namespace roomsync

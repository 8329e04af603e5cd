#include "gateway/query_params.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Page sizes are bounded so that one request cannot ask the store for an
// unbounded scan (PROTOCOL.md: 1-1000).
constexpr int kMaxPageSize = 1000;

}  // namespace

void SplitTarget(std::string_view target, std::string_view* path, std::string_view* query) {
  size_t question = target.find('?');
  if (question == std::string_view::npos) {
    *path = target;
    *query = {};
  } else {
    *path = target.substr(0, question);
    *query = target.substr(question + 1);
  }
}

absl::StatusOr<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError("malformed percent-escape in the URL");
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) {
        return absl::InvalidArgumentError("malformed percent-escape in the URL");
      }
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

absl::StatusOr<QueryParams> QueryParams::Parse(std::string_view query) {
  QueryParams params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view raw_name = pair.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    absl::StatusOr<std::string> name = PercentDecode(raw_name, true);
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> value = PercentDecode(raw_value, true);
    if (!value.ok()) return value.status();
    params.params_.emplace_back(*std::move(name), *std::move(value));
  }
  return params;
}

const std::string* QueryParams::Find(std::string_view name) const {
  for (const auto& [key, value] : params_) {
    if (key == name) return &value;
  }
  return nullptr;
}

absl::StatusOr<int> QueryParams::PageSize(std::string_view name, int default_value) const {
  const std::string* text = Find(name);
  if (text == nullptr || text->empty()) return default_value;
  int value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value < 1 || value > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(name), " must be an integer from 1 to ", kMaxPageSize));
  }
  return value;
}

}  // namespace roomsync

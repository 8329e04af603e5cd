#include "storage/pg_text_array.h"

#include "absl/strings/str_cat.h"

namespace roomsync::storage_internal {

void PgArrayLiteral::AddText(std::string_view value) {
  Separate();
  text_.reserve(text_.size() + value.size() + 3);
  text_.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') text_.push_back('\\');
    text_.push_back(c);
  }
  text_.push_back('"');
}

void PgArrayLiteral::AddBytes(std::string_view bytes) {
  // "\\x0a1b...": the array parser turns \\ into \, and bytea reads \x hex.
  static constexpr char kHex[] = "0123456789abcdef";
  Separate();
  size_t start = text_.size();
  text_.resize(start + 5 + 2 * bytes.size());
  char* out = text_.data() + start;
  *out++ = '"';
  *out++ = '\\';
  *out++ = '\\';
  *out++ = 'x';
  for (unsigned char b : bytes) {
    *out++ = kHex[b >> 4];
    *out++ = kHex[b & 0xf];
  }
  *out = '"';
}

void PgArrayLiteral::AddInt64(int64_t value) {
  Separate();
  absl::StrAppend(&text_, value);
}

void PgArrayLiteral::AddBool(bool value) {
  Separate();
  text_.push_back(value ? 't' : 'f');
}

std::string PgArrayLiteral::Finish() && {
  text_.push_back('}');
  return std::move(text_);
}

}  // namespace roomsync::storage_internal

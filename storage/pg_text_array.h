// PostgreSQL array literals ('{"a","b"}') for binding whole batches as
// single parameters, so that a commit or lookup of N documents is one
// statement with unnest() instead of N statements. Written by hand because
// libpqxx 6.4 can parse arrays but not build them.
#ifndef ROOMSYNC_STORAGE_PG_TEXT_ARRAY_H_
#define ROOMSYNC_STORAGE_PG_TEXT_ARRAY_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace roomsync::storage_internal {

// Builds one array literal element by element. Text elements are always
// double-quoted with '"' and '\' escaped, so commas, braces, spaces and the
// word NULL inside a value survive. The text must not contain NUL (libpq
// passes parameters as C strings); callers check that first.
class PgArrayLiteral {
 public:
  PgArrayLiteral() : text_("{") {}

  void AddText(std::string_view value);
  // For a bytea[] parameter: the value in bytea's hex input format.
  void AddBytes(std::string_view bytes);
  void AddInt64(int64_t value);
  void AddBool(bool value);

  // The finished literal; the builder must not be used afterwards.
  std::string Finish() &&;

 private:
  void Separate() {
    if (text_.size() > 1) text_.push_back(',');
  }
  std::string text_;
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_PG_TEXT_ARRAY_H_

#include "base/json_text.h"

#include <cstring>

namespace roomsync {
namespace {

// The UTF-16 code unit of the four hex digits at json[at], or -1.
int CodeUnitAt(std::string_view json, size_t at) {
  if (at + 4 > json.size()) return -1;
  int unit = 0;
  for (size_t i = at; i < at + 4; ++i) {
    char c = json[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return -1;
    }
    unit = unit * 16 + digit;
  }
  return unit;
}

bool IsHighSurrogate(int unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
bool IsLowSurrogate(int unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

}  // namespace

std::optional<std::string> MaskLoneSurrogateEscapes(std::string_view json) {
  std::optional<std::string> masked;
  size_t i = 0;
  // In JSON text a backslash only ever starts an escape inside a string, and
  // an escape is two bytes ("\n", "\\", ...) or six ("\uXXXX"), so hopping
  // from backslash to backslash this way stays in step with the escapes. In
  // text that is not JSON, whatever is changed stays not JSON.
  while (i < json.size()) {
    const void* found = std::memchr(json.data() + i, '\\', json.size() - i);
    if (found == nullptr) break;
    i = static_cast<size_t>(static_cast<const char*>(found) - json.data());
    if (i + 1 >= json.size()) break;
    if (json[i + 1] != 'u') {
      i += 2;
      continue;
    }
    int unit = CodeUnitAt(json, i + 2);
    if (unit < 0) {  // a bad escape: the parser refuses it
      i += 2;
      continue;
    }
    if (!IsHighSurrogate(unit) && !IsLowSurrogate(unit)) {
      i += 6;
      continue;
    }
    if (IsHighSurrogate(unit) && i + 8 <= json.size() && json[i + 6] == '\\' &&
        json[i + 7] == 'u' && IsLowSurrogate(CodeUnitAt(json, i + 8))) {
      i += 12;  // a pair: one code point
      continue;
    }
    if (!masked) masked.emplace(json);
    masked->replace(i + 2, 4, "0000");
    i += 6;
  }
  return masked;
}

std::optional<size_t> FirstInvalidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    // The range of the second byte (RFC 3629's table); later bytes are
    // 80..BF.
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3;
      low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      length = 3;
    } else if (lead == 0xED) {  // not D800..DFFF
      length = 3;
      high = 0x9F;
    } else if (lead == 0xF0) {
      length = 4;
      low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {  // not above U+10FFFF
      length = 4;
      high = 0x8F;
    } else {
      return i;
    }
    if (size - i < length) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace roomsync

// JSON text as RFC 8259's grammar allows it, for parsers that are stricter
// than the grammar, and UTF-8 checks that say where the bad byte is.
#ifndef ROOMSYNC_BASE_JSON_TEXT_H_
#define ROOMSYNC_BASE_JSON_TEXT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace roomsync {

// RFC 8259's grammar allows any "\uXXXX" escape, and JavaScript's
// JSON.stringify writes one for every UTF-16 surrogate that is not part of a
// pair ("\ud83c"); simdjson refuses such a string. Returns a copy of `json`
// in which each escape of an unpaired surrogate (a high one not directly
// followed by an escaped low one, or a low one not directly preceded by an
// escaped high one) reads "\u0000" instead, or nullopt when there is none
// (the common case, with no copy). The replacement is six bytes for six,
// hex digits for hex digits, so every offset stays the same and the copy is
// well-formed JSON exactly when `json` is (apart from those surrogates).
// Only ever parse the copy to validate and to read what the server needs;
// forward the original bytes. A string the server does decode from the
// copy (an id, a member name) then holds U+0000 where the original held a
// lone surrogate.
std::optional<std::string> MaskLoneSurrogateEscapes(std::string_view json);

// The offset of the first byte of `text` that does not start a well-formed
// UTF-8 sequence (RFC 3629: no overlong forms, no encoded surrogates,
// nothing above U+10FFFF, nothing truncated), or nullopt if `text` is UTF-8.
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_JSON_TEXT_H_

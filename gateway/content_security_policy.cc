#include "gateway/content_security_policy.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

constexpr std::string_view kScriptSrc = "script-src 'self'";

// One place for the policy's text: the base policy is this with nothing
// inserted after kScriptSrc.
constexpr std::string_view kPolicy =
    "default-src 'self'; connect-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'";

bool IsHtmlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

// Case-insensitive search for `needle` (lower case) in `text` from `from`.
size_t FindIgnoringCase(std::string_view text, std::string_view needle, size_t from) {
  while (from + needle.size() <= text.size()) {
    if (absl::EqualsIgnoreCase(ToAbsl(text.substr(from, needle.size())), ToAbsl(needle))) {
      return from;
    }
    ++from;
  }
  return std::string_view::npos;
}

struct StartTag {
  bool importmap = false;
  bool has_src = false;
  size_t end = std::string_view::npos;  // just after '>'
};

// Parses the attributes of a start tag whose name ends at `position`.
StartTag ParseScriptStartTag(std::string_view html, size_t position) {
  StartTag tag;
  size_t i = position;
  while (i < html.size()) {
    while (i < html.size() && (IsHtmlSpace(html[i]) || html[i] == '/')) ++i;
    if (i >= html.size()) return tag;
    if (html[i] == '>') {
      tag.end = i + 1;
      return tag;
    }
    size_t name_start = i;
    while (i < html.size() && !IsHtmlSpace(html[i]) && html[i] != '=' && html[i] != '>' &&
           html[i] != '/') {
      ++i;
    }
    std::string name = absl::AsciiStrToLower(ToAbsl(html.substr(name_start, i - name_start)));
    while (i < html.size() && IsHtmlSpace(html[i])) ++i;
    std::string_view value;
    if (i < html.size() && html[i] == '=') {
      ++i;
      while (i < html.size() && IsHtmlSpace(html[i])) ++i;
      if (i < html.size() && (html[i] == '"' || html[i] == '\'')) {
        char quote = html[i++];
        size_t close = html.find(quote, i);
        if (close == std::string_view::npos) return tag;
        value = html.substr(i, close - i);
        i = close + 1;
      } else {
        size_t value_start = i;
        while (i < html.size() && !IsHtmlSpace(html[i]) && html[i] != '>') ++i;
        value = html.substr(value_start, i - value_start);
      }
    }
    if (name == "type") {
      tag.importmap = absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(ToAbsl(value)), "importmap");
    } else if (name == "src") {
      tag.has_src = true;
    }
  }
  return tag;
}

std::string Sha256Source(std::string_view text) {
  std::string normalized;
  normalized.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      normalized += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      normalized += text[i];
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(normalized.data(), normalized.size(), digest, &length, EVP_sha256(), nullptr);
  std::string encoded;
  absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(digest), length), &encoded);
  return "sha256-" + encoded;
}

}  // namespace

std::string_view BaseContentSecurityPolicy() { return kPolicy; }

std::vector<std::string> InlineImportMapHashes(std::string_view html) {
  std::vector<std::string> hashes;
  size_t position = 0;
  while ((position = FindIgnoringCase(html, "<script", position)) != std::string_view::npos) {
    size_t name_end = position + 7;
    position = name_end;
    if (name_end < html.size() && !IsHtmlSpace(html[name_end]) && html[name_end] != '>' &&
        html[name_end] != '/') {
      continue;  // <scripts>, <script-x>: another element
    }
    StartTag tag = ParseScriptStartTag(html, name_end);
    if (tag.end == std::string_view::npos) break;
    // The script's text runs to the next "</script" (the HTML tokenizer's
    // script data state; an import map is JSON, with no "<!--" tricks).
    size_t close = FindIgnoringCase(html, "</script", tag.end);
    if (close == std::string_view::npos) break;
    if (tag.importmap && !tag.has_src) {
      hashes.push_back(Sha256Source(html.substr(tag.end, close - tag.end)));
    }
    position = close + 8;
  }
  return hashes;
}

std::string HtmlContentSecurityPolicy(std::string_view html) {
  std::string policy(kPolicy);
  size_t insert_at = policy.find(kScriptSrc) + kScriptSrc.size();
  std::string sources;
  for (const std::string& hash : InlineImportMapHashes(html)) {
    sources += " '";
    sources += hash;
    sources += '\'';
  }
  policy.insert(insert_at, sources);
  return policy;
}

}  // namespace roomsync

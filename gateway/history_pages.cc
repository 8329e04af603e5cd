#include "gateway/history_pages.h"

#include <openssl/evp.h>

#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/string_view.h"
#include "gateway/json_codec.h"

namespace roomsync {
namespace {

// Epochs are server-made (hex today); as a path segment one must need no
// escaping. Longer ones are not ours (json_codec.cc's checkpoint limit).
constexpr size_t kMaxEpochBytes = 128;
// Far above any seq a room reaches, and below overflow of to + 1.
constexpr int64_t kMaxSeq = std::numeric_limits<int64_t>::max() / 4;

absl::Status BadPage(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "bad history page (", ToAbsl(why), "): a page URL is .../history/pages/{epoch}/{compacted}/{from}-{to}",
      " as a history response's \"older\" names it, {from}-{to} a block of ", kHistoryPageSeqs,
      " seqs such as 1-", kHistoryPageSeqs, " or ", kHistoryPageSeqs + 1, "-", 2 * kHistoryPageSeqs));
}

bool IsUrlSafe(std::string_view text) {
  if (text.empty() || text.size() > kMaxEpochBytes) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_' &&
        c != '~') {
      return false;
    }
  }
  return text != "." && text != "..";
}

// Canonical decimal only ("0", or no leading zero): one URL per page.
bool ParseCanonical(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 18 || (text.size() > 1 && text[0] == '0')) return false;
  int64_t result = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    result = result * 10 + (c - '0');
  }
  if (result > kMaxSeq) return false;
  *value = result;
  return true;
}

void AppendNull(std::string& out) { out += "null"; }

}  // namespace

HistoryPageAddress HistoryPageOf(const v1::Checkpoint& head, int64_t seq) {
  HistoryPageAddress page;
  page.epoch = head.epoch();
  page.compacted = head.compacted();
  page.from_seq = (seq - 1) / kHistoryPageSeqs * kHistoryPageSeqs + 1;
  page.to_seq = page.from_seq + kHistoryPageSeqs - 1;
  return page;
}

absl::StatusOr<HistoryPageAddress> ParseHistoryPagePath(std::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(ToAbsl(path), '/');
  if (parts.size() != 3) return BadPage("not three segments");
  HistoryPageAddress page;
  if (!IsUrlSafe(ToStd(parts[0]))) return BadPage("bad epoch");
  page.epoch = std::string(parts[0]);
  if (!ParseCanonical(ToStd(parts[1]), &page.compacted)) return BadPage("bad compacted");
  size_t dash = parts[2].find('-');
  if (dash == absl::string_view::npos) return BadPage("no {from}-{to}");
  if (!ParseCanonical(ToStd(parts[2].substr(0, dash)), &page.from_seq) ||
      !ParseCanonical(ToStd(parts[2].substr(dash + 1)), &page.to_seq) || page.from_seq < 1) {
    return BadPage("bad seq range");
  }
  if (page.from_seq > page.to_seq) return BadPage("from > to");
  if (page.to_seq - page.from_seq + 1 != kHistoryPageSeqs) return BadPage("range is not one block");
  if ((page.from_seq - 1) % kHistoryPageSeqs != 0) return BadPage("range is not aligned");
  return page;
}

void AppendHistoryPageUrl(std::string& out, std::string_view room, const HistoryPageAddress& page,
                          std::string_view collection) {
  // Room names ([A-Za-z0-9._~-]), checked epochs, numbers and collection
  // names ([a-z0-9_]) need no escaping.
  absl::StrAppend(&out, "/v1/rooms/", ToAbsl(room), "/history/pages/", page.epoch, "/",
                  page.compacted, "/", page.from_seq, "-", page.to_seq);
  if (!collection.empty()) absl::StrAppend(&out, "?collection=", ToAbsl(collection));
}

HistoryPageState ClassifyHistoryPage(const HistoryPageAddress& page, const v1::Checkpoint& head) {
  if (page.epoch != head.epoch()) return HistoryPageState::kOtherEpoch;
  if (page.compacted != head.compacted()) return HistoryPageState::kRecompacted;
  if (page.to_seq > head.seq()) return HistoryPageState::kOpen;
  return HistoryPageState::kComplete;
}

std::string HistoryPageCacheControl(bool cacheable, HistoryCacheScope scope) {
  if (!cacheable) return "no-store";
  return absl::StrCat(scope == HistoryCacheScope::kPublic ? "public" : "private",
                      ", max-age=", kHistoryPageMaxAgeSeconds, ", immutable");
}

std::string HistoryPageETag(std::string_view room, const HistoryPageAddress& page,
                            std::string_view collection, std::string_view body) {
  // NUL-separated: no field contains one, so no two inputs collide.
  const absl::string_view nul("\0", 1);
  std::string address = absl::StrCat(ToAbsl(room), nul, page.epoch, nul, page.compacted, nul,
                                     page.from_seq, "-", page.to_seq, nul, ToAbsl(collection), nul);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  EVP_DigestUpdate(context, address.data(), address.size());
  EVP_DigestUpdate(context, body.data(), body.size());
  EVP_DigestFinal_ex(context, digest, &length);
  EVP_MD_CTX_free(context);
  // 128 bits: collisions between two bodies of one URL are out of reach.
  return absl::StrCat(
      "\"hp-", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 16)),
      "\"");
}

bool HistoryPageMatches(std::string_view if_none_match, std::string_view etag) {
  for (absl::string_view candidate : absl::StrSplit(ToAbsl(if_none_match), ',')) {
    candidate = absl::StripAsciiWhitespace(candidate);
    if (candidate == "*") return true;
    if (absl::StartsWith(candidate, "W/")) candidate.remove_prefix(2);
    if (candidate == ToAbsl(etag)) return true;
  }
  return false;
}

std::string EncodeHistoryPageBody(const v1::HistoryResponse& response, std::string_view room,
                                  const HistoryPageAddress& page, std::string_view collection) {
  const bool with_collection = collection.empty();
  size_t bytes = 256;
  for (const v1::Document& document : response.documents()) bytes += document.json().size() + 96;
  std::string out;
  out.reserve(bytes);
  out += R"({"documents":[)";
  const v1::Document* older = nullptr;
  bool first = true;
  for (const v1::Document& document : response.documents()) {
    if (document.seq() > page.to_seq) continue;  // not ours (the read was from `before`)
    if (document.seq() < page.from_seq) {
      older = &document;  // newest first: the newest older document
      break;
    }
    if (!first) out += ',';
    first = false;
    AppendDocument(out, document, with_collection);
  }
  out += R"(],"next":)";
  // Links follow the room as it is now (a recompacted page links to pages
  // of the current compacted_through), and only with an epoch that is a
  // path segment as it stands.
  const bool linkable = older != nullptr && IsUrlSafe(response.head().epoch());
  if (older != nullptr) {
    v1::Checkpoint next;
    next.set_seq(page.from_seq);
    next.set_epoch(response.head().epoch());
    AppendCheckpoint(out, next);
  } else {
    AppendNull(out);
  }
  out += R"(,"older":)";
  if (linkable) {
    out += '"';
    AppendHistoryPageUrl(out, room, HistoryPageOf(response.head(), older->seq()), collection);
    out += '"';
  } else {
    AppendNull(out);
  }
  out += '}';
  return out;
}

}  // namespace roomsync

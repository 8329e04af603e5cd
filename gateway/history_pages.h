// Cacheable history pages (docs/api.md, "History pages"): scroll-back in
// aligned blocks of seqs whose URLs every client of a room shares, so that
// a CDN or a caching proxy in front of the gateway answers a thousand
// clients scrolling through the same room with one read per page.
//
//   GET /v1/rooms/{room}/history/pages/{epoch}/{compacted}/{from}-{to}[?collection=NAME]
//
// A page holds the documents whose seq lies in [from, to] (an aligned block
// of kHistoryPageSeqs), newest first, plus the URL of the next older page.
// The store keeps one state per document, so a block's content never gains
// a document once its seqs are all assigned (to <= the room's last_seq); it
// can only lose one, when the document is written again (its new state gets
// a new seq above) or when compaction removes a tombstone. A cached copy is
// therefore the page as it is now plus states superseded since, each by a
// state in a newer page: a reader going newest first that keeps the first
// state it meets of each id (tombstones included) gets the same result from
// any mix of cached and fresh pages. Compaction is named by {compacted} (the
// room's compacted_through): a compaction that raises it gives every page a
// new URL, and one that does not only removes tombstones of seqs at most
// compacted_through, which were committed before any page of that URL was
// read, so no cached copy holds a state they superseded.
//
// Pure functions; thread-safe.
#ifndef ROOMSYNC_GATEWAY_HISTORY_PAGES_H_
#define ROOMSYNC_GATEWAY_HISTORY_PAGES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

// The seqs of one page: [k * 100 + 1, (k + 1) * 100]. As many as /history's
// default page size; one read of at most kHistoryPageSeqs + 1 documents.
inline constexpr int64_t kHistoryPageSeqs = 100;
// How long a cache keeps a complete page without asking again. It bounds
// how long a cached copy goes on holding a state that was since superseded
// (an edited or deleted message's ciphertext): docs/security.md.
inline constexpr int64_t kHistoryPageMaxAgeSeconds = 86400;

// Which page: the room's epoch and compacted_through it was named under,
// and its block of seqs.
struct HistoryPageAddress {
  std::string epoch;
  int64_t compacted = 0;
  int64_t from_seq = 0;
  int64_t to_seq = 0;
};

// The page that holds `seq` (>= 1), named by `head`'s epoch and compacted.
HistoryPageAddress HistoryPageOf(const v1::Checkpoint& head, int64_t seq);

// Parses "{epoch}/{compacted}/{from}-{to}" (the path after
// ".../history/pages/"). kInvalidArgument, with a message saying what a page
// URL looks like, for anything else: numbers not in canonical decimal, an
// epoch that is not 1-128 URL-safe characters, from > to, a block that is
// not aligned or not kHistoryPageSeqs long.
absl::StatusOr<HistoryPageAddress> ParseHistoryPagePath(std::string_view path);

// Appends the page's URL: an absolute path under /v1/rooms/ (one URL per
// page whichever prefix the client used, so caches share it), with
// "?collection=NAME" when `collection` is not empty.
void AppendHistoryPageUrl(std::string& out, std::string_view room,
                          const HistoryPageAddress& page, std::string_view collection);

// What the room's head (HistoryResponse.head) says about a page.
enum class HistoryPageState {
  kComplete,      // every seq assigned, named by the current compacted: cacheable
  kOpen,          // reaches above the head: still gains documents, no-store
  kRecompacted,   // named by another compacted_through: served no-store, links renamed
  kOtherEpoch,    // the room's history is another one: 404
};
HistoryPageState ClassifyHistoryPage(const HistoryPageAddress& page, const v1::Checkpoint& head);

// Who may keep a complete page: browsers only ("private", the default with
// auth on) or shared caches too ("public": auth off, or the gateway's
// --public_history_cache; docs/security.md).
enum class HistoryCacheScope { kPrivate, kPublic };

// The Cache-Control of a page: "public|private, max-age=86400, immutable"
// when `cacheable`, else "no-store".
std::string HistoryPageCacheControl(bool cacheable, HistoryCacheScope scope);

// A strong ETag ("hp-" and 32 hex digits, quoted): SHA-256 of the room, the
// page's address, the collection and the body, so two different bodies of
// one URL never share it and every gateway computes the same one.
std::string HistoryPageETag(std::string_view room, const HistoryPageAddress& page,
                            std::string_view collection, std::string_view body);

// Whether an If-None-Match header names `etag` (RFC 9110 13.1.2: weak
// comparison, "*" matches).
bool HistoryPageMatches(std::string_view if_none_match, std::string_view etag);

// The page's body from a HistoryResponse read with before = to + 1 and
// limit = kHistoryPageSeqs + 1: {"documents":[the documents of [from, to],
// newest first],"next":{"seq":from,"epoch":E}|null,"older":URL|null}.
// "next" is the `before` of /history for what is older; "older" names the
// page of the newest older document (empty pages are skipped), both null
// when there is none. Links are named by `response.head()`.
std::string EncodeHistoryPageBody(const v1::HistoryResponse& response, std::string_view room,
                                  const HistoryPageAddress& page, std::string_view collection);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_HISTORY_PAGES_H_

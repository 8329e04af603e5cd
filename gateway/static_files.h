// The web root (--web): GET and HEAD of the files under one directory, so
// that a web app (the demo chat) is served on the API's own origin. The
// session sends here every GET/HEAD path outside the API's (routes.h).
//
// What a request gets:
//  - a regular file under the root: 200 with its bytes, Content-Type by
//    extension (ContentTypeFor), a strong ETag from its size and mtime,
//    Cache-Control: no-cache (always revalidate: a rebuilt app shows at
//    once), X-Content-Type-Options: nosniff; HTML pages (and SVG) also a
//    Content-Security-Policy (content_security_policy.h);
//  - If-None-Match naming the current ETag: 304 without a body;
//  - HEAD: the same head as GET, no body;
//  - a path ending in '/': that directory's index.html, or 404 — there
//    are no directory listings, and a directory named without the '/' is
//    404 as well;
//  - a refused path (static_path.h), a missing file, anything that is not
//    a regular file, and any file whose canonical path (symlinks resolved)
//    is outside the root's: 404 `not_found`, the same answer for each, so
//    that nothing about the rest of the file system shows;
//  - a file above kMaxFileBytes: 500 `internal` and a warning
//    "static_file_too_large" in the log;
//  - another method: 405 `method_not_allowed`, Allow: GET, HEAD.
// Errors have the API's JSON body ({"error":{"code","message"}}).
//
// Thread-safety: Serve() from any thread, concurrently; Stop() once, from
// a thread that may block. Answer() is const and may run concurrently.
#ifndef ROOMSYNC_GATEWAY_STATIC_FILES_H_
#define ROOMSYNC_GATEWAY_STATIC_FILES_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "gateway/api_response.h"

namespace roomsync {

class StaticFiles {
 public:
  // Web apps are a few MiB at most; a bound keeps one request from holding
  // (or a few from exhausting) the gateway's memory, since a file is read
  // whole before it is sent.
  static constexpr size_t kMaxFileBytes = size_t{32} << 20;

  struct Request {
    std::string method;  // "GET", "HEAD", ...
    // The target's path, still percent-encoded, without the query.
    std::string path;
    // The If-None-Match header ("" when absent).
    std::string if_none_match;
  };

  // Serves `root` (resolved to its canonical path now: a root that is
  // later replaced by a symlink is not followed). Reads run on
  // `reader_threads` threads of their own. kInvalidArgument when `root`
  // is not a directory that can be opened.
  static absl::StatusOr<std::unique_ptr<StaticFiles>> Open(const std::string& root,
                                                           int reader_threads = 2);
  ~StaticFiles();

  // The answer to `request`, computed on the calling thread: it blocks on
  // the file system (a realpath, an open, one read of at most
  // kMaxFileBytes). The gateway calls it through Serve().
  ApiResponse Answer(const Request& request) const;

  // Answer() on a reader thread, then `reply(response)` on that thread.
  // The gateway's I/O threads never wait for a disk: a cold read of a large
  // file, or a slow network file system, would stall every connection of
  // that thread. After Stop(), replies 503 `unavailable` at once.
  void Serve(Request request, std::function<void(ApiResponse)> reply);

  // Runs what Serve() queued, then joins the reader threads. Idempotent.
  void Stop();

  // The canonical root.
  const std::string& root() const { return root_; }

 private:
  struct Readers;
  StaticFiles(std::string root, int reader_threads);
  // A GET or HEAD of `path`.
  ApiResponse AnswerRead(std::string_view path, std::string_view if_none_match, bool head) const;

  const std::string root_;        // canonical, no trailing '/' (except "/")
  const std::string root_slash_;  // root_ with one trailing '/'
  std::unique_ptr<Readers> readers_;
};

// The Content-Type for a file name, by its extension (case-insensitive):
// text/html, text/javascript (.js, .mjs) and text/css with charset=utf-8,
// JSON, SVG, PNG, JPEG, ICO, web manifests, WebAssembly, source maps,
// plain text; anything else application/octet-stream.
std::string_view ContentTypeFor(std::string_view file_name);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_STATIC_FILES_H_

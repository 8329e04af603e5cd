#include "gateway/static_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "base/string_view.h"
#include "gateway/content_security_policy.h"
#include "gateway/static_path.h"

namespace roomsync {
namespace {

constexpr std::string_view kAllow = "GET, HEAD";

struct ContentType {
  std::string_view extension;
  std::string_view type;
};

constexpr ContentType kContentTypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
    {".wasm", "application/wasm"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

constexpr std::string_view kOctetStream = "application/octet-stream";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `canonical` (realpath's result, so it has no symlink in it) for
// reading without following any symlink on the way: one swapped in after
// realpath (by someone who can write to the web root) fails the open
// instead of leading out of the root. O_NONBLOCK: opening a FIFO must not
// wait for a writer (fstat then refuses it).
int OpenWithoutSymlinks(const std::string& canonical) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, canonical.c_str(), &how, sizeof how));
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
  // Kernels before 5.6, or a seccomp filter without openat2: the last
  // component at least is not followed.
  return ::open(canonical.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
}

// Reads up to `size` bytes; false on a read error. A file that shrank
// while being read is sent as far as it goes.
bool ReadUpTo(int fd, size_t size, std::string* out) {
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out->data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return true;
}

// A strong validator (RFC 9110 8.8.3): it changes whenever the file is
// rewritten, which changes its mtime (nanoseconds) or its size.
std::string ETagOf(const struct stat& info) {
  int64_t mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return absl::StrCat("\"", absl::Hex(static_cast<uint64_t>(info.st_size)), "-",
                      absl::Hex(static_cast<uint64_t>(mtime_ns)), "\"");
}

// If-None-Match uses the weak comparison (RFC 9110 13.1.2): "W/" is
// ignored on either side; "*" matches any current file.
bool MatchesIfNoneMatch(std::string_view header, std::string_view etag) {
  for (absl::string_view candidate : absl::StrSplit(ToAbsl(header), ',')) {
    candidate = absl::StripAsciiWhitespace(candidate);
    if (candidate == "*") return true;
    if (absl::StartsWith(candidate, "W/")) candidate.remove_prefix(2);
    if (ToStd(candidate) == etag) return true;
  }
  return false;
}

// The headers every static answer has: browsers must not guess types, and
// must revalidate before using a cached copy.
void AddCommonHeaders(ApiResponse& response) {
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Cache-Control", "no-cache");
}

ApiResponse Error(int status, std::string_view code, std::string_view message) {
  ApiResponse response = ErrorResponse(status, code, message);
  AddCommonHeaders(response);
  return response;
}

ApiResponse NotFound() { return Error(404, "not_found", "no such file"); }

// A HEAD answer is the GET answer's head: the body goes, its length stays.
ApiResponse ForMethod(ApiResponse response, bool head) {
  if (head) {
    if (!response.content_length.has_value()) response.content_length = response.body.size();
    response.body.clear();
  }
  return response;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view file_name) {
  size_t slash = file_name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? file_name : file_name.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos) return kOctetStream;
  std::string_view extension = base.substr(dot);
  for (const ContentType& entry : kContentTypes) {
    if (absl::EqualsIgnoreCase(ToAbsl(extension), ToAbsl(entry.extension))) return entry.type;
  }
  return kOctetStream;
}

struct StaticFiles::Readers {
  explicit Readers(int threads) : pool(static_cast<size_t>(threads)) {}
  boost::asio::thread_pool pool;
  std::mutex mu;
  bool stopped = false;  // guarded by mu: no post after Stop()'s join began
};

absl::StatusOr<std::unique_ptr<StaticFiles>> StaticFiles::Open(const std::string& root,
                                                               int reader_threads) {
  if (root.empty()) return absl::InvalidArgumentError("the web root is empty");
  if (reader_threads < 1) return absl::InvalidArgumentError("reader_threads must be at least 1");
  char resolved[PATH_MAX];
  struct stat info {};
  if (::realpath(root.c_str(), resolved) == nullptr || ::stat(resolved, &info) != 0 ||
      !S_ISDIR(info.st_mode) || ::access(resolved, R_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("web root ", root, " is not a readable directory"));
  }
  return std::unique_ptr<StaticFiles>(new StaticFiles(resolved, reader_threads));
}

StaticFiles::StaticFiles(std::string root, int reader_threads)
    : root_(std::move(root)),
      root_slash_(root_ == "/" ? root_ : root_ + "/"),
      readers_(std::make_unique<Readers>(reader_threads)) {}

StaticFiles::~StaticFiles() { Stop(); }

ApiResponse StaticFiles::Answer(const Request& request) const {
  const bool head = request.method == "HEAD";
  if (!head && request.method != "GET") {
    ApiResponse refused = Error(405, "method_not_allowed", "method not allowed");
    refused.allow = kAllow;
    return ForMethod(std::move(refused), head);
  }
  return ForMethod(AnswerRead(request.path, request.if_none_match, head), head);
}

ApiResponse StaticFiles::AnswerRead(std::string_view path, std::string_view if_none_match,
                                    bool head) const {
  absl::StatusOr<std::string> relative = StaticFilePath(path);
  if (!relative.ok()) return NotFound();
  char resolved[PATH_MAX];
  if (::realpath((root_slash_ + *relative).c_str(), resolved) == nullptr) return NotFound();
  const std::string canonical(resolved);
  if (!canonical.starts_with(root_slash_)) return NotFound();
  Fd fd(OpenWithoutSymlinks(canonical));
  struct stat info {};
  if (fd.get() < 0 || ::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) return NotFound();
  const size_t size = static_cast<size_t>(info.st_size);
  if (size > kMaxFileBytes) {
    Log(LogLevel::kWarning, "static_file_too_large",
        {{"file", *relative},
         {"bytes", static_cast<int64_t>(size)},
         {"max_bytes", static_cast<int64_t>(kMaxFileBytes)}});
    return Error(500, "internal", "the file is larger than the gateway serves");
  }

  ApiResponse found;
  AddCommonHeaders(found);
  std::string etag = ETagOf(info);
  found.headers.emplace_back("ETag", etag);
  if (!if_none_match.empty() && MatchesIfNoneMatch(if_none_match, etag)) {
    found.status = 304;
    found.content_type = {};
    found.content_length = size;
    return found;
  }
  found.content_type = ContentTypeFor(*relative);
  const bool html = absl::StartsWith(ToAbsl(found.content_type), "text/html");
  // A HEAD needs the bytes only for a page's policy (its hashes).
  if (!head || html) {
    if (!ReadUpTo(fd.get(), size, &found.body)) {
      Log(LogLevel::kWarning, "static_file_unreadable", {{"file", *relative}, {"errno", errno}});
      return Error(500, "internal", "the file cannot be read");
    }
  }
  if (html) {
    found.headers.emplace_back("Content-Security-Policy", HtmlContentSecurityPolicy(found.body));
  } else if (found.content_type == "image/svg+xml") {
    // An SVG opened as a document runs its scripts: allow none inline.
    found.headers.emplace_back("Content-Security-Policy", std::string(BaseContentSecurityPolicy()));
  }
  if (head && !html) found.content_length = size;
  return found;
}

void StaticFiles::Serve(Request request, std::function<void(ApiResponse)> reply) {
  {
    std::lock_guard<std::mutex> lock(readers_->mu);
    if (!readers_->stopped) {
      boost::asio::post(readers_->pool, [this, request = std::move(request),
                                         reply = std::move(reply)]() mutable {
        reply(Answer(request));
      });
      return;
    }
  }
  reply(ForMethod(Error(503, "unavailable", "the gateway is draining"), request.method == "HEAD"));
}

void StaticFiles::Stop() {
  {
    std::lock_guard<std::mutex> lock(readers_->mu);
    if (readers_->stopped) return;
    readers_->stopped = true;
  }
  // join() without stop(): every queued read runs and replies, so no
  // request is dropped unanswered.
  readers_->pool.join();
}

}  // namespace roomsync

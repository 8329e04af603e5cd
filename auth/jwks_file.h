// A JWKS file on disk that is re-read when it changes, so signing keys can
// rotate without a restart: publish the new key, start signing with it,
// remove the old key once its tokens have expired. Thread-safe.
#ifndef ROOMSYNC_AUTH_JWKS_FILE_H_
#define ROOMSYNC_AUTH_JWKS_FILE_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/jwk_set.h"
#include "auth/jwt_clock.h"

namespace roomsync {

class JwksFile {
 public:
  // Reads and parses `path` now. kInvalidArgument if it cannot be read or
  // parsed (see ParseJwkSet): a server must not start without its keys.
  static absl::StatusOr<std::unique_ptr<JwksFile>> Open(
      std::string path, JwtClock clock, absl::Duration check_interval = absl::Seconds(1));

  // The current keys. At most once per `check_interval` (by `clock`) this
  // stats the file, and re-reads it when its identity (inode, size, mtime,
  // ctime) changed. If the new contents do not parse, the previous keys
  // stay in use, a warning is logged once, and the file is tried again on
  // later checks: a half-written file must not lock everyone out. Writers
  // should replace the file atomically (write a temp file, rename it).
  std::shared_ptr<const JwkSet> Keys() const;

 private:
  struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
  };

  JwksFile(std::string path, JwtClock clock, absl::Duration check_interval)
      : path_(std::move(path)), clock_(std::move(clock)), check_interval_(check_interval) {}

  // Reads the file; on success installs the keys and remembers `identity`.
  absl::Status Load(const FileIdentity& identity) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReload() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const JwtClock clock_;
  const absl::Duration check_interval_;

  // Keys() is logically const; the cache behind it changes.
  mutable absl::Mutex mu_;
  mutable absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  mutable FileIdentity loaded_ ABSL_GUARDED_BY(mu_);
  // The failure last logged: one warning per bad file, not one a second.
  mutable FileIdentity failed_ ABSL_GUARDED_BY(mu_);
  mutable std::string failed_message_ ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const JwkSet> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWKS_FILE_H_

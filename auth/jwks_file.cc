#include "auth/jwks_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace roomsync {
namespace {

// A JWKS with a few dozen keys is a few KiB; anything this large is a
// wrong path, not a key set.
constexpr off_t kMaxJwksBytes = 1 << 20;

absl::StatusOr<struct stat> StatFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot stat JWKS file ", path, ": ", std::strerror(errno)));
  }
  return info;
}

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JwksFile>> JwksFile::Open(std::string path, JwtClock clock,
                                                         absl::Duration check_interval) {
  if (!clock) clock = RealJwtClock();
  std::unique_ptr<JwksFile> file(new JwksFile(std::move(path), std::move(clock), check_interval));
  absl::MutexLock lock(&file->mu_);
  absl::StatusOr<struct stat> info = StatFile(file->path_);
  if (!info.ok()) return info.status();
  FileIdentity identity{info->st_dev, info->st_ino, info->st_size, Nanos(info->st_mtim),
                        Nanos(info->st_ctim)};
  if (absl::Status loaded = file->Load(identity); !loaded.ok()) return loaded;
  file->last_check_ = file->clock_();
  return file;
}

absl::Status JwksFile::Load(const FileIdentity& identity) const {
  if (identity.size > kMaxJwksBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS file ", path_, " is larger than ", kMaxJwksBytes, " bytes"));
  }
  std::ifstream in(path_, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read JWKS file ", path_));
  }
  absl::StatusOr<JwkSet> keys = ParseJwkSet(contents.str());
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS file ", path_, ": ", keys.status().message()));
  }
  keys_ = std::make_shared<const JwkSet>(*std::move(keys));
  loaded_ = identity;
  return absl::OkStatus();
}

void JwksFile::MaybeReload() const {
  absl::Time now = clock_();
  // A clock that went backwards (a test's, or NTP) also triggers a check.
  if (now >= last_check_ && now - last_check_ < check_interval_) return;
  last_check_ = now;
  absl::StatusOr<struct stat> info = StatFile(path_);
  FileIdentity identity;
  if (info.ok()) {
    identity = {info->st_dev, info->st_ino, info->st_size, Nanos(info->st_mtim),
                Nanos(info->st_ctim)};
    if (identity == loaded_) return;
  }
  absl::Status status = info.ok() ? Load(identity) : info.status();
  if (status.ok()) {
    failed_ = FileIdentity{};
    failed_message_.clear();
    Log(LogLevel::kInfo, "jwks_reloaded",
        {{"path", path_}, {"keys", static_cast<int64_t>(keys_->keys().size())}});
    return;
  }
  if (identity == failed_ && status.message() == failed_message_) return;
  failed_ = identity;
  failed_message_ = std::string(status.message());
  Log(LogLevel::kWarning, "jwks_reload_failed",
      {{"path", path_}, {"error", std::string(status.message())}, {"keeping_previous_keys", true}});
}

std::shared_ptr<const JwkSet> JwksFile::Keys() const {
  absl::MutexLock lock(&mu_);
  MaybeReload();
  return keys_;
}

}  // namespace roomsync

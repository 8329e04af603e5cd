#include "tests/support/temp_dir.h"

#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace roomsync::testing {

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/",
                                  prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error(
        absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;  // best effort: a leftover dir must not fail a test
  std::filesystem::remove_all(path_, ignored);
}

std::string TempSqlitePath() {
  // Removed by static destruction at exit, after every test has finished.
  static TempDir dir("roomsync-sqlite");
  static std::atomic<int> next{0};
  return absl::StrCat(dir.path(), "/store-", next.fetch_add(1), ".db");
}

std::string TempSqliteUrl() { return absl::StrCat("sqlite:", TempSqlitePath()); }

}  // namespace roomsync::testing

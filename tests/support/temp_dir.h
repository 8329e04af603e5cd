// Temporary directories for tests.
#ifndef ROOMSYNC_TESTS_SUPPORT_TEMP_DIR_H_
#define ROOMSYNC_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace roomsync::testing {

// A fresh directory under $TMPDIR (default /tmp), removed with everything
// in it when destroyed. Throws std::runtime_error if it cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "roomsync-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A path for a new SQLite file (not yet created) inside one per-process
// temp directory that is removed at exit; distinct on every call.
std::string TempSqlitePath();
// The same as a store URL: "sqlite:<path>".
std::string TempSqliteUrl();

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_SUPPORT_TEMP_DIR_H_

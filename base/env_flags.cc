#include "base/env_flags.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/string_view.h"

extern char** environ;

namespace roomsync {
namespace {

// Variables of the project's scripts and tests, which share the prefix but
// are not flags: the binaries see them in their environment under ctest.
bool IsScriptVariable(absl::string_view name) {
  for (absl::string_view prefix : {"TEST_", "E2E_", "BENCH_", "FUZZ_", "DEPLOY_"}) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return name == "BIN" || absl::EndsWith(name, "_BIN") || absl::EndsWith(name, "_BINARY");
}

}  // namespace

void ParseFlagsWithEnv(int argc, char** argv, std::string_view usage) {
  // Debian's Abseil is built without NDEBUG, so absl::Mutex deadlock
  // detection is on: a global lock-order graph updated whenever a mutex is
  // created, locked or destroyed (a few percent of a push's CPU, measured
  // with perf). The binaries turn it off; tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // --help lists our own flags (absl's default shows only main's file).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(absl::StrCat(
      ToAbsl(usage),
      "\n\nEvery flag --name may also be given as the environment variable "
      "ROOMSYNC_NAME (upper case); the command line wins."));

  // Environment values go first so that later command-line occurrences of
  // the same flag override them (the last occurrence wins).
  std::vector<std::string> from_env;
  for (char** env = environ; env != nullptr && *env != nullptr; ++env) {
    std::string_view entry(*env);
    if (!absl::StartsWith(ToAbsl(entry), "ROOMSYNC_")) continue;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    absl::string_view upper = ToAbsl(entry.substr(9, eq - 9));
    std::string name = absl::AsciiStrToLower(upper);
    if (absl::FindCommandLineFlag(name) == nullptr) {
      if (IsScriptVariable(upper)) continue;
      // A typo in a deployment must not be silently ignored.
      std::fprintf(stderr,
                   "unknown environment variable ROOMSYNC_%.*s: this binary has no flag --%s "
                   "(see --help; names of scripts' variables start with ROOMSYNC_TEST_, "
                   "ROOMSYNC_E2E_, ROOMSYNC_BENCH_, ROOMSYNC_FUZZ_ or ROOMSYNC_DEPLOY_)\n",
                   static_cast<int>(upper.size()), upper.data(), name.c_str());
      std::exit(2);
    }
    from_env.push_back(absl::StrCat("--", name, "=", ToAbsl(entry.substr(eq + 1))));
  }
  std::vector<char*> args;
  args.push_back(argv[0]);
  for (std::string& s : from_env) args.push_back(s.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size() - 1), args.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "unexpected argument: %s (see --help)\n", positional[1]);
    std::exit(2);
  }
}

}  // namespace roomsync

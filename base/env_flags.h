// Command-line flags with environment-variable equivalents: every flag
// --some_name can also be set as ROOMSYNC_SOME_NAME (the command line wins).
#ifndef ROOMSYNC_BASE_ENV_FLAGS_H_
#define ROOMSYNC_BASE_ENV_FLAGS_H_

#include <string_view>

namespace roomsync {

// Sets the usage message (with a note on ROOMSYNC_* variables), applies
// ROOMSYNC_* environment variables to the matching registered flags, then
// parses the command line (which overrides them). Exits with status 2 on a
// bad flag, like absl::ParseCommandLine, and on a ROOMSYNC_* variable that
// names no flag (a typo), except the scripts' own (ROOMSYNC_TEST_*,
// ROOMSYNC_E2E_*, ROOMSYNC_BENCH_*, ROOMSYNC_FUZZ_*, ROOMSYNC_DEPLOY_*, and
// names ending in _BIN or _BINARY). Call first in main(): it also sets
// process-wide defaults of a server (absl::Mutex deadlock detection off).
void ParseFlagsWithEnv(int argc, char** argv, std::string_view usage);

}  // namespace roomsync

#endif  // ROOMSYNC_BASE_ENV_FLAGS_H_

// roomsyncctl's subcommands (docs/operations.md, "roomsyncctl"). The
// binary is main() around Run; tests call it too.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_COMMANDS_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace roomsync::ctl {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the call failed, or check found problems
inline constexpr int kExitUsage = 2;  // bad command line

// `args` without the program name. Results go to `out`, messages to `err`.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_COMMANDS_H_

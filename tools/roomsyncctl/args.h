// roomsyncctl's command-line parsing: each subcommand declares its options,
// so that each has its own --help and an unknown option is a usage error
// (exit 2) naming it. Written by hand because Abseil's flags are global to
// the process: one set for every subcommand, and --help lists them all.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_ARGS_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_ARGS_H_

#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace roomsync::ctl {

struct OptionSpec {
  const char* name;  // without the leading "--"
  bool takes_value;  // false: a switch
  const char* help;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // switches map to "true"
  bool help = false;

  bool Has(const std::string& name) const { return values.contains(name); }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

// --name value, --name=value and switches; "--" ends the options; "-" is
// positional (stdin). kInvalidArgument names an unknown option or a
// missing value.
absl::StatusOr<ParsedArgs> ParseArgs(std::span<const std::string> args,
                                     std::span<const OptionSpec> options);

// "usage: ...\n\nsummary\n\noptions:\n  --name VALUE  help\n".
std::string HelpText(const std::string& usage, const std::string& summary,
                     std::span<const OptionSpec> options);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_ARGS_H_

#include "tools/roomsyncctl/args.h"

#include <algorithm>

#include <optional>

#include "absl/strings/str_cat.h"

namespace roomsync::ctl {

absl::StatusOr<ParsedArgs> ParseArgs(std::span<const std::string> args,
                                     std::span<const OptionSpec> options) {
  ParsedArgs parsed;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      if (!options_ended && arg == "--") {
        options_ended = true;
        continue;
      }
      parsed.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    // --older-than and --older_than are the same option.
    std::replace(name.begin(), name.end(), '-', '_');
    if (name == "help") {
      parsed.help = true;
      continue;
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& option : options) {
      if (name == option.name) spec = &option;
    }
    if (spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    if (!spec->takes_value) {
      if (value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      parsed.values[name] = "true";
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    parsed.values[name] = *value;
  }
  return parsed;
}

std::string HelpText(const std::string& usage, const std::string& summary,
                     std::span<const OptionSpec> options) {
  std::string text = absl::StrCat("usage: ", usage, "\n\n", summary, "\n");
  if (!options.empty()) {
    absl::StrAppend(&text, "\noptions:\n");
    for (const OptionSpec& option : options) {
      std::string left = absl::StrCat("  --", option.name, option.takes_value ? " VALUE" : "");
      if (left.size() < 28) left.resize(28, ' ');
      absl::StrAppend(&text, left, " ", option.help, "\n");
    }
  }
  absl::StrAppend(&text, "  --help                     this text\n");
  return text;
}

}  // namespace roomsync::ctl

// The skeleton the three programs' mains share (hds-trainer, hds-data-service, hds-launch):
// CLI11 parsing with a subcommand required, then one call per subcommand whose exceptions become
// the exit codes of exit_codes.h and one message on stderr. A main defines its options and says
// which library function each subcommand calls; nothing else.
#pragma once

#include <CLI/CLI.hpp>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "hds/common/main_options.h"

namespace hds::common {

// Parses `argv` into `app` (help and version exit 0), insists on one of its subcommands, then
// returns `run()`'s exit code, or the Failure of what it throws after printing
// "<program>: <context><label><what()>" to stderr.
int run_main(CLI::App& app, int argc, char** argv, const MainOptions& options,
             const std::function<int()>& run);

// `--config FILE` and `--set a.b=v` (repeatable) on `command`, the options every job command has.
void add_config_options(CLI::App& command, std::string& config_path,
                        std::vector<std::string>& overrides, bool required = true);

// CLI11 2.1 reads "-1" into an unsigned integer as 2^64 - 1: this check refuses the sign.
CLI::Validator non_negative_integer();

}  // namespace hds::common

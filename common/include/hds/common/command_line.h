// The skeleton the three programs' mains share (hds-trainer, hds-data-service, hds-launch):
// CLI11 parsing with a subcommand required, then one call per subcommand whose exceptions become
// the exit codes of exit_codes.h and one message on stderr. Each subcommand registers its own
// options beside its code (a Subcommand); a main lists them and calls run_subcommands.
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
// "<program>: <context><label><message or what()>" to stderr.
int run_main(CLI::App& app, int argc, char** argv, const MainOptions& options,
             const std::function<int()>& run);

// A subcommand: its node on the command line (whose options write into state `run` holds) and
// what it does once chosen; `run` returns the exit code.
struct Subcommand {
  CLI::App* command = nullptr;
  std::function<int()> run;
};

// run_main with the run of whichever of `subcommands` the command line chose (kExitFinished when
// none: a group such as `bench` given without one of its own subcommands).
int run_subcommands(CLI::App& app, int argc, char** argv, const MainOptions& options,
                    const std::vector<Subcommand>& subcommands);

// `--config FILE` and `--set a.b=v` (repeatable) on `command`, the options every job command has.
void add_config_options(CLI::App& command, std::string& config_path,
                        std::vector<std::string>& overrides, bool required = true);

// CLI11 2.1 reads "-1" into an unsigned integer as 2^64 - 1: this check refuses the sign.
CLI::Validator non_negative_integer();

}  // namespace hds::common

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

#include "hds/common/failure.h"

namespace hds::common {

struct MainOptions {
  // Names the program at the start of each message ("hds-launch: error: ..."); "" for none.
  std::string program;
  // A bad command line exits kExitUsage, or with CLI11's own code (105 for a value that fails
  // its check, ...) where a program's users already depend on those.
  bool cli11_exit_codes = false;
  std::function<Failure(const std::exception&)> classify = classify_failure;
  // Text before each error message, asked for when the error happens ("rank 1/2: ").
  std::function<std::string()> context;
  // Called with the exit code of a failure before main returns it (e.g. to end every MPI rank).
  std::function<void(int)> on_failure;
};

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

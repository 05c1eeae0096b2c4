// hds-launch: local | sbatch | slurm-run | cv | ablation | clean. Each subcommand registers its
// options beside its code (hds/launch/commands.h); this lists them. Exit codes
// (hds/common/exit_codes.h): those of the trainers (0 finished, 1 error, 2 bad configuration, 3
// non-finite loss, 75 stopped with a checkpoint), 1 when the launch itself fails, 2 for a bad
// command line or configuration, 128 + N when a second signal N stopped the job at once.
#include <CLI/CLI.hpp>
#include <iostream>

#include "hds/common/command_line.h"
#include "hds/common/exit_codes.h"
#include "hds/launch/commands.h"
#include "hds/launch/process.h"

namespace {

// UsageError exits 2 with its message alone; any other failure of the launch exits 1.
hds::common::Failure classify(const std::exception& error) {
  if (dynamic_cast<const hds::launch::UsageError*>(&error) != nullptr) {
    return {hds::launch::kExitUsage, ""};
  }
  hds::common::Failure failure = hds::common::classify_failure(error);
  if (failure.exit_code == hds::common::kExitError) {
    failure.exit_code = hds::launch::kExitLaunchFailed;
  }
  return failure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hds-launch: run HDS training jobs on this machine (mpirun) or on Slurm"};
  const std::vector<hds::common::Subcommand> subcommands = {
      hds::launch::add_local_command(app, std::cout, std::cerr),
      hds::launch::add_sbatch_command(app, std::cout),
      hds::launch::add_slurm_run_command(app, std::cerr),
      hds::launch::add_cv_command(app, std::cout, std::cerr),
      hds::launch::add_ablation_command(app, std::cout, std::cerr),
      hds::launch::add_clean_command(app, std::cout)};
  hds::common::MainOptions options;
  options.program = "hds-launch";
  options.classify = classify;
  return hds::common::run_subcommands(app, argc, argv, options, subcommands);
}

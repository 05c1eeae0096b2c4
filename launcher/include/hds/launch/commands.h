// The subcommands of hds-launch, one function each, so that main.cpp only parses the command
// line. They find the programs they run (tools.h), then run or write the job. Throw
// hds::config::ConfigError, UsageError or LaunchError (process.h).
#pragma once

#include <iosfwd>
#include <string>

#include "hds/launch/local_launch.h"
#include "hds/launch/slurm_script.h"

namespace hds::launch {

// `local`: the job on this machine (local_launch.h); with dry_run, only the mpirun command line.
// Returns hds-launch's exit code.
struct LocalCommand {
  LocalLaunchOptions options;
  bool dry_run = false;
};
int run_local_command(LocalCommand command, std::ostream& out, std::ostream& messages);

// `sbatch`: writes the batch script and the effective configuration (slurm_script.h), and with
// submit hands it to `sbatch` ("" = $HDS_SBATCH, else PATH). Prints where they are.
struct SbatchCommand {
  SbatchOptions options;
  bool submit = false;
  std::string sbatch;
};
void run_sbatch_command(SbatchCommand command, std::ostream& out);

}  // namespace hds::launch

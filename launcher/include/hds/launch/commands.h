// The subcommands of hds-launch: each add_*_command registers the subcommand and its options on
// the command line and returns what runs it (main.cpp only lists them); the run_*_command
// functions find the programs they run (tools.h), then run or write the job. They throw
// hds::config::ConfigError, UsageError or LaunchError (process.h).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "hds/common/command_line.h"
#include "hds/launch/experiments.h"
#include "hds/launch/local_launch.h"
#include "hds/launch/slurm_run.h"
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

// `clean`: removes what abandoned jobs left (job_lock.h) and says what, or that there was nothing.
void run_clean_command(std::ostream& out);

// `cv`: cross-validation (experiments.h). Every rotation of `folds` folds (or those listed in
// `rotations`) is trained and evaluated under <train.output_dir>/cv/fold-<k>; then the paper's
// Table 2 (mean ± std over the folds, both protocols, the baselines) goes to
// <train.output_dir>/cv/table2.md and cv.json and is printed. Needs a source that divides its
// films into folds (mini-mias, inbreast, or phantom with data.phantom.divide_into_folds).
// Returns hds-launch's exit code.
struct CrossValidationCommand {
  ExperimentOptions options;
  int folds = 5;
  std::vector<int> rotations;  // empty: all of them
};
int run_cv_command(CrossValidationCommand command, std::ostream& out, std::ostream& messages);

// `ablation`: the four loss.variant values of the paper's Table 1 on the configuration's split
// (data.fold), each under <train.output_dir>/ablation/<VARIANT>; the table goes to
// <train.output_dir>/ablation/table1.md and ablation.json and is printed.
struct AblationCommand {
  ExperimentOptions options;
};
int run_ablation_command(AblationCommand command, std::ostream& out, std::ostream& messages);

// Registration on `app`, with where each writes its report (`out`) and its progress (`messages`).
hds::common::Subcommand add_local_command(CLI::App& app, std::ostream& out, std::ostream& messages);
hds::common::Subcommand add_sbatch_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_slurm_run_command(CLI::App& app, std::ostream& messages);
hds::common::Subcommand add_cv_command(CLI::App& app, std::ostream& out, std::ostream& messages);
hds::common::Subcommand add_ablation_command(CLI::App& app, std::ostream& out,
                                             std::ostream& messages);
hds::common::Subcommand add_clean_command(CLI::App& app, std::ostream& out);

}  // namespace hds::launch

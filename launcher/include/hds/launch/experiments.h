// Several training runs of one configuration, each with overrides of its own: `hds-launch cv`
// (one run per rotation of the folds) and `hds-launch ablation` (one per loss variant). Each run
// is trained by `hds-launch local` (this program, so every run is a whole job: data service,
// ranks, checkpoints, signals) and then evaluated by `hds-trainer eval` on its test split, with
// the best-Dice checkpoint (selected on the validation split; the latest where there is none).
// Several runs go at once where the devices or cores allow; each gets its own metrics ports
// and, on CPU, its share of the cores.
//
// Resumable: a run is done once <run>/eval/metrics.json exists (eval writes it last), so the same
// command after a stop, a failure or a reboot skips finished runs and resumes the others from
// their latest checkpoint (--resume auto). A first SIGINT/SIGTERM/SIGHUP asks every running job
// to stop with a checkpoint and starts no more (exit 75); a second one stops them at once.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace hds::launch {

struct ExperimentRun {
  std::string name;                    // "fold-2", "HDS": in messages and tables
  std::vector<std::string> overrides;  // --set values after the user's
  std::string output_dir;              // absolute; the run's train.output_dir
};

struct ExperimentOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // the user's --set values, for every run
  int ranks = 1;                       // trainer ranks per run
  int parallel = 0;                    // runs at once; 0 = default_parallel_runs
  int bootstrap_rounds = 1000;         // of each evaluation
  std::string init_from;  // "" or a checkpoint directory every run starts from (fit's --init-from)
  // Absolute paths (tools.h): this program, and what `hds-launch local` runs.
  std::string launcher;
  std::string trainer;
  std::string data_service;
  std::string mpirun;
};

// The evaluation a run is done with: <output_dir>/eval/metrics.json.
std::string evaluation_file(const ExperimentRun& run);

// Runs at once when ExperimentOptions::parallel is 0, for `runs` runs of `ranks` ranks: on CUDA
// the visible devices (CUDA_VISIBLE_DEVICES, else /dev/nvidiaN) over the ranks, on CPU the
// physical cores over the ranks; at least 1, at most `runs`.
int default_parallel_runs(const std::string& device, int ranks, int runs);

// Trains and evaluates every run that has no evaluation yet. Progress goes to `messages`, each
// run's output to <output_dir>/run.log. Returns 0 when every run has its evaluation, 75
// (hds::common::kExitStopped) when a signal stopped them, else the exit code of the first run
// that failed (the others still go on to their end). Throws UsageError or
// hds::config::ConfigError for bad options or a bad configuration.
int run_experiments(const std::vector<ExperimentRun>& runs, const ExperimentOptions& options,
                    std::ostream& messages);

}  // namespace hds::launch

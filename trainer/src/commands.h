// The subcommands of hds-trainer, one function each (each in its own <name>_command.cpp; bench's
// in bench.cpp), so that main.cpp only parses the command line. The binary's, not the library's
// API. Reports go to `out`; errors are thrown (hds::config::ConfigError, NonFiniteLossError,
// CheckpointError, ...) and become exit codes in main (hds/common/exit_codes.h).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "bench.h"
#include "config.pb.h"
#include "hds/common/command_line.h"
#include "hds/common/main_options.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

// How hds-trainer's main reports errors: NonFiniteLossError exits kExitNonFiniteLoss ("training
// stopped: "), CollectiveError kExitRankLost ("a rank was lost: "), the rest as
// hds::common::classify_failure says; in a job of several ranks every message starts "rank r/n: "
// and a failing rank ends them all with its code (the others may wait in a collective for ever).
// `world` is set once fit or bench start the ranks.
hds::common::MainOptions trainer_main_options(const std::unique_ptr<World>& world);

// `describe`: the module summary, then "parameters:", "trunk_conv3x3:", "conv3x3:",
// "cls_map_train:" and "cls_map_test:" lines.
void run_describe_command(const hds::config::Config& config, std::ostream& out);

// `fit`: one rank's training run. SIGTERM and SIGUSR1 stop every rank after the same step with a
// checkpoint; SIGUSR2 says such a stop is overdue (FitOptions::stop_overdue); every rank serves its
// metrics (metrics.h) unless monitoring.metrics_port is 0. Rank 0 prints where the metrics are and
// a closing summary. Returns kExitFinished, or kExitStopped after a stop on request.
struct FitCommand {
  // A checkpoint, a run's checkpoints/ folder, "auto" (the run's latest checkpoint when there is
  // one) or "" (a fresh start).
  std::string resume;
  // A checkpoint (or a run's checkpoints/ folder) whose weights start a new schedule at epoch 1
  // with a fresh optimizer: fine-tuning. Unused when `resume` finds a checkpoint to continue.
  std::string init_from;
  int64_t stop_at_step = 0;       // > 0: checkpoint and stop after this global step
  std::string progress = "auto";  // rank 0's step progress: auto, bar or lines (progress.h)
};
int run_fit_command(const hds::config::Config& config, const FitCommand& command,
                    const World& world, std::ostream& out);

// `export`: the weights of a checkpoint (its saved configuration) or of a freshly initialised
// model of `config_path` (with `init`) for Python's torch.load (export.h).
struct ExportCommand {
  std::string checkpoint;  // or:
  bool init = false;
  std::string config_path;  // with init; "" = the paper's configuration
  std::vector<std::string> overrides;
  std::string out;     // a weights file, or:
  std::string bundle;  // a model bundle folder (bundle.h), of --checkpoint
  std::string bundle_version = "0.1.0";
  std::string changelog;
  std::string evaluation;         // an `eval --out` folder for the bundle
  std::string layout = "native";  // or "reference"
  bool probe = false;
};
void run_export_command(const ExportCommand& command, std::ostream& out);

// `eval`: whole-film inference of a checkpoint on a split of its dataset, scored by both
// protocols with bootstrap intervals beside the trivial baselines (evaluation_report.h). Writes
// metrics.json, metrics.md, films.csv, roc.svg, froc.svg and overlays/<film>.png (truth red,
// prediction green) under `out`, and prints the table.
struct EvalCommand {
  std::string checkpoint;
  std::string config_path;  // "" = the checkpoint's saved configuration
  std::vector<std::string> overrides;
  std::string split = "val";   // val, test or all (every film of the dataset)
  std::string heads = "last";  // last or all
  std::string out;
  int bootstrap_rounds = 1000;
  uint64_t seed = 1;
};
void run_eval_command(const EvalCommand& command, std::ostream& out);

// `infer`: a checkpoint's model on mammogram files of any size and kind (hds/data/film_file.h),
// with the training preprocessing and the checkpoint's normalisation. Writes, in each film's own
// geometry, <name>.mask.png (0/255), <name>.overlay.png (the prediction outlined in green) and
// <name>.json (mass probability; each predicted lesion's bounding box, area and peak probability)
// under `out`. A film that cannot be read or run is reported on `errors`, naming it, and the
// others are still done. Returns how many failed (at most 100): hds-trainer's exit code.
struct InferCommand {
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string out;
};
int run_infer_command(const InferCommand& command, std::ostream& out, std::ostream& errors);

// `bench`: one JSON line a round (rank 0) with the median training step (bench.h).
void run_bench_command(const hds::config::Config& config, const BenchOptions& options,
                       const World& world, std::ostream& out);

// Registration of each subcommand and its options on `app`, beside its code; main.cpp lists
// them. fit and bench start the ranks into `world` (trainer_main_options reads it).
hds::common::Subcommand add_describe_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_fit_command(CLI::App& app, std::unique_ptr<World>& world,
                                        std::ostream& out);
hds::common::Subcommand add_export_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_eval_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_infer_command(CLI::App& app, std::ostream& out, std::ostream& errors);
hds::common::Subcommand add_bench_command(CLI::App& app, std::unique_ptr<World>& world,
                                          std::ostream& out);

}  // namespace hds::trainer

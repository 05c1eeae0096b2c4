// The subcommands of hds-trainer, one function each, so that main.cpp only parses the command
// line. Reports go to `out`; errors are thrown (hds::config::ConfigError, NonFiniteLossError,
// CheckpointError, ...) and become exit codes in main (hds/common/exit_codes.h).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/common/failure.h"
#include "hds/trainer/bench.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

// What an error of these commands means for hds-trainer's exit code: NonFiniteLossError exits
// kExitNonFiniteLoss ("training stopped: "), the rest as hds::common::classify_failure says.
hds::common::Failure classify_failure(const std::exception& error);

// `describe`: the module summary, then "parameters:", "trunk_conv3x3:", "conv3x3:",
// "cls_map_train:" and "cls_map_test:" lines.
void run_describe_command(const hds::config::Config& config, std::ostream& out);

// `fit`: one rank's training run. SIGTERM and SIGUSR1 stop every rank after the same step with a
// checkpoint; every rank serves its metrics (metrics.h) unless monitoring.metrics_port is 0.
// Rank 0 prints where the metrics are and a closing summary. Returns kExitFinished, or
// kExitStopped after a stop on request.
struct FitCommand {
  // A checkpoint, a run's checkpoints/ folder, "auto" (the run's latest checkpoint when there is
  // one) or "" (a fresh start).
  std::string resume;
  int64_t stop_at_step = 0;  // > 0: checkpoint and stop after this global step
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
  std::string out;
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

// `bench`: one JSON line (rank 0) with the median training step (bench.h).
void run_bench_command(const hds::config::Config& config, const BenchOptions& options,
                       const World& world, std::ostream& out);

}  // namespace hds::trainer

// `hds-trainer fit`: the training loop (DESIGN §3 schedule), periodic whole-image validation,
// best-Dice / best-accuracy snapshots, atomic checkpoints and exact resume.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "config.pb.h"
#include "hds/trainer/step_report.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

// A NaN or infinite loss. what() names the epoch, step, head and term, and the last good
// checkpoint to resume from.
class NonFiniteLossError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FitOptions {
  // A checkpoint directory (or a run's checkpoints root) to continue from; "" starts afresh.
  std::string resume_from;
  // Polled after every step; when it returns true the run writes a checkpoint and returns.
  std::function<bool()> stop_requested;
  // Stop (with a checkpoint) once this many global steps are done; <= 0 means never.
  int64_t stop_at_step = 0;
  // Called after every step (on every rank).
  std::function<void(const StepReport&)> on_step;
  // Called after each validation (rank 0) and each checkpoint written (rank 0, its seconds).
  std::function<void(const hds::checkpoint::ValidationResult&)> on_validation;
  std::function<void(double)> on_checkpoint;
  // Progress lines go here (on rank 0; other ranks print nothing).
  std::ostream* log = nullptr;
  // The ranks of a data-parallel run (world.h); null trains alone. Every rank calls fit with the
  // same config; gradients are averaged over the ranks, only rank 0 validates and writes
  // checkpoints and summary.json, and a stop asked of any rank stops all at the same step.
  const World* world = nullptr;
};

struct FitResult {
  bool finished = false;  // all epochs done (false: stopped early on request)
  int completed_epochs = 0;
  int64_t global_step = 0;
  double last_loss = 0;
  std::string last_checkpoint;
  hds::checkpoint::ValidationResult best_dice;
  hds::checkpoint::ValidationResult best_accuracy;
  hds::checkpoint::ValidationResult last_validation;
};

FitResult fit(const hds::config::Config& config, const FitOptions& options);

// The device named by the config ("cpu" or "cuda"; a CUDA rank uses the GPU of its local rank),
// checked to exist.
torch::Device resolve_device(const std::string& name, int local_rank = 0);

}  // namespace hds::trainer

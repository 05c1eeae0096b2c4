// `hds-trainer fit`: the training loop (docs/design.md §3 schedule), periodic whole-image
// validation, best-Dice / best-accuracy snapshots, atomic checkpoints and exact resume.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <ostream>
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
  // A checkpoint whose model weights and BatchNorm statistics the run starts from, with its own
  // schedule from epoch 1 and a fresh optimizer (fine-tuning). The checkpoint's model must have
  // this run's architecture (model block; dropout may differ). Unused when resume_from is set.
  std::string init_from;
  // Polled after every step; when it returns true the run writes a checkpoint and returns.
  std::function<bool()> stop_requested;
  // Polled on the watchdog's thread: true once a stop has been pending too long (hds-launch and
  // the Slurm job send SIGUSR2). Rank 0 then checkpoints the last completed step, even while its
  // main thread waits in a collective, and ends the job with kExitStopped; the other ranks wait
  // to be ended with it.
  std::function<bool()> stop_overdue;
  // Stop (with a checkpoint) once this many global steps are done; <= 0 means never.
  int64_t stop_at_step = 0;
  // Told of every step, a non-finite loss (just before the rank throws NonFiniteLossError), each
  // validation and checkpoint (step_report.h), in this order; each must outlive the run.
  std::vector<TrainingObserver*> observers;
  // What the run does (data, resume, validations, checkpoints) is told here on rank 0; other
  // ranks print nothing. Step progress is the on_step callback's to show (progress.h).
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

// The schedule of one epoch (schedule.h): head weights and learning rate.
struct EpochSchedule {
  std::vector<double> seg_weights;
  std::vector<double> cls_weights;
  double learning_rate = 0;
};
EpochSchedule epoch_schedule(const hds::config::Config& config, int epoch);

// Trains as `config` says, phase by phase (src/training_loop.h).
FitResult fit(const hds::config::Config& config, const FitOptions& options);

// The device named by the config ("cpu" or "cuda"; a CUDA rank uses the GPU of its local rank),
// checked to exist.
torch::Device resolve_device(const std::string& name, int local_rank = 0);

}  // namespace hds::trainer

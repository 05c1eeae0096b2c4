// One rank's training run, phase by phase: what fit() drives (training.h). Private to the
// trainer library: its state (the training-state lock, the step's saved tensors, the watchdog)
// is no one else's business.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/trainer/batch_source.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/gradient_sync.h"
#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"
#include "hds/trainer/step_compute.h"
#include "hds/trainer/training.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

class Watchdog;

// Every rank of a data-parallel run
// calls the same methods in the same order: they hold collectives. Not thread-safe.
class TrainingLoop {
 public:
  // Starts the rank's watchdog (watchdog.h: a hung collective or step ends the job with
  // kExitRankLost and a report on stderr), loads the dataset (with a data service: rank 0's
  // validation films alone, once connected), builds the model and the optimizer
  // on this rank's device, resumes from options.resume_from when it is set, connects the batch
  // source and, with several ranks, the gradient sync (rank 0's weights and BatchNorm buffers are
  // broadcast). `config` and `options` must outlive the loop.
  TrainingLoop(const hds::config::Config& config, const FitOptions& options);
  ~TrainingLoop();
  TrainingLoop(const TrainingLoop&) = delete;
  TrainingLoop& operator=(const TrainingLoop&) = delete;

  // Trains from where the loop stands to the last epoch or an agreed stop (then with a
  // checkpoint), validating and checkpointing as configured; rank 0 writes summary.json.
  FitResult run();

  // Step `step` (0-based) of 1-based `epoch`: one batch, forward, losses, backward, gradient
  // sync, SGD. Throws NonFiniteLossError; when the batch source fails, rank 0 first checkpoints
  // the steps done since the last checkpoint, then the error propagates.
  void train_step(int epoch, int step, const EpochSchedule& schedule);
  // Rank 0: whole-image validation after `epoch`, recorded as the last validation and, when at
  // least as good (ties go to the later epoch), as the best Dice or accuracy.
  struct Improvement {
    bool dice = false;
    bool accuracy = false;
  };
  Improvement validate(int epoch);
  // Rank 0 writes a checkpoint of the state after `completed_epochs` epochs and `step_in_epoch`
  // steps of the next, whose schedule is `next`; returns its directory ("" on other ranks).
  std::string save_checkpoint(int completed_epochs, int step_in_epoch, const EpochSchedule& next);

  const FitResult& result() const { return result_; }

 private:
  void start_watchdog();
  // On the watchdog's thread, when options.stop_overdue() says so (rank 0 only).
  void checkpoint_overdue_stop();
  void remember_step_start(int epoch, int step);
  void resume(const std::string& checkpoint);
  void initialise_from(const std::string& checkpoint);
  // The most steps a rank of the run's previous launch had finished (its progress records).
  int64_t steps_done_by_previous_launch() const;
  void connect_ranks();
  // With a data service: the films this rank still needs (rank 0's validation films), normalised
  // as the service announced.
  void load_served_films(const hds::data_client::Normalisation& normalisation);
  bool validation_due(int epoch) const;
  // Collective: true on every rank when any rank was asked to stop (or reached stop_at_step).
  bool stop_agreed() const;
  // Rank 0 writes summary.json; with `leave_together`, the ranks then wait for each other.
  FitResult finish(bool finished, bool leave_together);

  const hds::config::Config& config_;
  const FitOptions& options_;
  const World single_process_;
  const World& world_;
  std::ostream quiet_{nullptr};  // where ranks other than 0 log
  std::ostream& log_;
  torch::Device device_{torch::kCPU};
  StepCompute compute_;
  hds::data::Dataset dataset_;
  HdsNet model_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<CheckpointStore> store_;
  FitResult result_;
  int start_epoch_ = 1;
  int start_step_ = 0;
  std::unique_ptr<BatchSource> source_;
  int steps_per_epoch_ = 0;
  std::unique_ptr<GradientSync> sync_;
  std::atomic<GradientSync*> sync_to_abort_{nullptr};  // sync_, for the watchdog's thread
  int64_t checkpointed_step_ = 0;  // the global step of the last checkpoint written
  bool warned_lone_patch_ = false;
  int64_t steps_done_before_ = 0;  // by the previous launch of this run (for the resume's report)

  // The main thread holds state_mutex_ while it changes the training state (forward and
  // backward, the optimizer step, validation, checkpoints) and lets go while it waits for data
  // or for other ranks, where an overdue stop's checkpoint may be written from another thread.
  std::timed_mutex state_mutex_;
  // Where a checkpoint of the state as it stands resumes: after the last completed step.
  struct Position {
    int completed_epochs = 0;
    int step_in_epoch = 0;
  } position_;
  // Rank 0: the state as the step under way found it (what its forward pass changes: BatchNorm
  // statistics, the generator), so that a step stuck in its gradient sync can be checkpointed
  // as not yet begun.
  struct StepStart {
    bool under_way = false;
    Position position;
    std::string rng_state;
    torch::Tensor float_buffers;  // the model's float buffers, flattened
    torch::Tensor other_buffers;  // the others (batch counts), as int64
  } step_start_;
  std::atomic<bool> overdue_handled_{false};
  // Last: it stops before anything it watches goes, and is unhooked from the world first (also
  // when the constructor throws).
  std::unique_ptr<Watchdog> watchdog_;
  struct Unobserve {
    const World* world = nullptr;
    ~Unobserve() {
      if (world) world->observe(nullptr);
    }
  } unobserve_;
};

}  // namespace hds::trainer

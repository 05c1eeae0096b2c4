// What a training run reports as it goes (training.h's fit): what each step did, and the
// observer interface every reporter (metrics.h, progress.h, training_history.h) implements. Plain
// data without LibTorch, so that code which only reports needs no LibTorch headers.
#pragma once

#include <cstdint>
#include <vector>

#include "checkpoint.pb.h"

namespace hds::trainer {

struct StepReport {
  int epoch = 0;  // 1-based
  int step = 0;   // 1-based within the epoch
  int steps_per_epoch = 0;
  int64_t global_step = 0;
  int patches = 0;
  int job_patches = 0;      // patches of the step over all ranks
  double loss = 0;          // total weighted loss: seg_loss + cls_loss
  double seg_loss = 0;      // weighted sum of the segmentation terms
  double cls_loss = 0;      // weighted sum of the MIL terms
  std::vector<int> heads;   // built heads, coarsest first
  std::vector<double> seg;  // unweighted per-head segmentation loss (0 where off)
  std::vector<double> cls;  // unweighted per-head MIL loss (0 where off)
  double learning_rate = 0;
  std::vector<double> seg_weights;  // head weights of this epoch, indexed by head 0..5
  std::vector<double> cls_weights;
  double seconds = 0;            // wall time of the step, data included
  double data_wait_seconds = 0;  // waiting for the batch (sampling, or the data service's ring)
  double sync_wait_seconds = 0;  // waiting for the gradient sync after backward (0 alone)
  double gradient_norm = 0;      // L2 norm of the gradient the optimizer applied (all ranks')
  // The rank's GPU memory after the step (CUDA allocator); -1 on the CPU.
  int64_t device_allocated_bytes = -1;
  int64_t device_reserved_bytes = -1;
};

// What a training run tells as it goes, on its training thread: every rank its steps (and a
// non-finite loss just before that ends the run); rank 0 its validations and checkpoints. Each
// method does nothing unless overridden.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual void on_step(const StepReport& /*report*/) {}
  // The total weighted loss of a step whose loss is NaN or infinite.
  virtual void on_nonfinite_loss(double /*weighted_loss*/) {}
  // The validation just done and the best-Dice one so far (it included).
  virtual void on_validation(const hds::checkpoint::ValidationResult& /*last*/,
                             const hds::checkpoint::ValidationResult& /*best_dice*/) {}
  // A checkpoint was written in `seconds`.
  virtual void on_checkpoint(double /*seconds*/) {}
};

}  // namespace hds::trainer

// What one training step did (training.h's fit reports it after every step), for progress lines
// and metrics. Plain data without LibTorch, so that code which only reports (metrics.h) needs no
// LibTorch headers.
#pragma once

#include <cstdint>
#include <vector>

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

}  // namespace hds::trainer

// How a training step computes on its device (train.precision, train.channels_last,
// train.cudnn_autotune; docs/design.md §9): the memory format of the model and its input, the
// autocast region of the forward pass, and the losses in float32 whatever the forward's precision.
// fit() and `hds-trainer bench` both run their steps through here (run_optimisation_step), so
// that the bench times exactly what training runs. Stateless apart from LibTorch's process-wide
// cuDNN flag.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "config.pb.h"
#include "hds/trainer/gradient_sync.h"
#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

struct StepCompute {
  hds::config::TrainConfig::Precision precision = hds::config::TrainConfig::FP32;
  bool channels_last = false;
  bool cudnn_autotune = true;
};

// The options of `train` for a step on `device`. Throws std::invalid_argument naming the field
// for BF16 on the CPU, whose bfloat16 kernels in LibTorch 1.13 give non-finite gradients at the
// paper's patch size (forward_and_loss itself computes bfloat16 on any device: the parity tests
// use it on CPU at small sizes, where it is finite).
StepCompute step_compute(const hds::config::TrainConfig& train, const torch::Device& device);

// Puts the model's 4-d parameters and buffers in the step's memory format (the tensors stay the
// same objects, so an optimizer made before keeps them) and sets cuDNN's autotuning. Call after
// loading a checkpoint (loading replaces the tensors' layout) and before a GradientSync is made
// (its gradient views take the parameters' layout).
void prepare_model(HdsNet& model, const StepCompute& compute);

// The forward pass of a training step and its loss (hds_loss): `images` [B, C, H, W] float32 on
// the model's device are put in the step's memory format, the forward runs under bfloat16
// autocast on the images' device type when the precision is BF16 and the logits are then cast to
// float32, so that softmax, cross-entropy and the MIL terms are float32 in every precision.
LossTerms forward_and_loss(HdsNet& model, const torch::Tensor& images, const torch::Tensor& masks,
                           const torch::Tensor& labels, const hds::config::LossConfig& loss,
                           const std::vector<double>& seg_weights,
                           const std::vector<double>& cls_weights, const StepCompute& compute);

// What a step does between the fixed points of run_optimisation_step.
struct StepPhases {
  // The forward pass, the loss and backward (a rank without patches may do nothing).
  std::function<void()> forward_and_backward;
  // Optional: runs `wait` (the gradient sync waiting for the other ranks); fit releases its
  // training-state lock around it and times it.
  std::function<void(const std::function<void()>& wait)> around_sync_wait;
  // Optional: after the sync, before the update (fit reads the gradient norm here).
  std::function<void()> before_update;
};

// One optimisation step in training's order: the gradients zeroed (by `sync` when there is one:
// they are views into its buckets, weighed by this rank's `gradient_share` of the step's
// patches), forward and backward, the sync's finish, the optimizer's step.
void run_optimisation_step(torch::optim::Optimizer& optimizer, GradientSync* sync,
                           double gradient_share, const StepPhases& phases);

}  // namespace hds::trainer

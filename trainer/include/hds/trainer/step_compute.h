// How a training step computes on its device (train.precision, train.channels_last,
// train.cudnn_autotune; docs/design.md §9): the memory format of the model and its input, the
// autocast region of the forward pass, and the losses in float32 whatever the forward's precision.
// fit() and `hds-trainer bench` both run their forward pass through here, so that the bench times
// what training runs. Stateless apart from LibTorch's process-wide cuDNN flag.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config.pb.h"
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

}  // namespace hds::trainer

// The training step's compute options (step_compute.h) against the plain float32 NCHW step on the
// same weights and batch: channels-last must give the same numbers up to summation order, bfloat16
// autocast numbers within bfloat16's precision, and a CUDA step (where a GPU is present) the CPU's.
// Dropout is off so that every variant draws no random numbers and sees the same network.
#include "hds/trainer/step_compute.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "hds/test/configs.h"
#include "hds/trainer/schedule.h"

namespace {

using hds::config::TrainConfig;
using hds::trainer::HdsNet;
using hds::trainer::StepCompute;

hds::config::Config parity_config(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> overrides{"model.stage_dropout=[0,0,0,0,0,0,0,0,0,0,0]",
                                     "model.head_dropout=[0,0,0,0,0,0]"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return hds::test::tiny_config("/nonexistent", overrides);
}

struct Batch {
  torch::Tensor images, masks, labels;
};

// 4 patches of 128x128 with a bright square where the mask is set, so that the losses have
// something to learn; the same for every call.
Batch fixed_batch(const torch::Device& device) {
  torch::manual_seed(2024);
  Batch b;
  b.masks = torch::zeros({4, 128, 128}, torch::kLong);
  b.masks.index_put_({torch::indexing::Slice(0, 2), torch::indexing::Slice(32, 80),
                      torch::indexing::Slice(40, 96)},
                     1);
  b.images = torch::randn({4, 1, 128, 128}) * 0.5 + b.masks.unsqueeze(1).to(torch::kFloat) * 2;
  b.labels = torch::tensor({1, 1, 0, 0}, torch::kLong);
  b.images = b.images.to(device);
  b.masks = b.masks.to(device);
  b.labels = b.labels.to(device);
  return b;
}

// One model per variant, all with the weights of seed 5.
HdsNet model_on(const hds::config::Config& config, const torch::Device& device,
                const StepCompute& compute) {
  torch::manual_seed(5);
  HdsNet model(config.model());
  model->to(device);
  model->train();
  hds::trainer::prepare_model(model, compute);
  return model;
}

struct StepOutcome {
  std::vector<double> losses;        // total loss of each step
  std::vector<torch::Tensor> grads;  // of the first step, on the CPU, contiguous
  torch::Tensor total;               // the first step's loss tensor
};

// `steps` SGD steps on the fixed batch, as the training loop runs them.
StepOutcome run_steps(const hds::config::Config& config, const torch::Device& device,
                      const StepCompute& compute, int steps) {
  HdsNet model = model_on(config, device, compute);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const Batch batch = fixed_batch(device);
  const auto seg_w = hds::trainer::seg_head_weights(config, 1);
  const auto cls_w = hds::trainer::cls_head_weights(config, 1);
  StepOutcome outcome;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    const auto terms = hds::trainer::forward_and_loss(
        model, batch.images, batch.masks, batch.labels, config.loss(), seg_w, cls_w, compute);
    terms.total.backward();
    outcome.losses.push_back(terms.total.item<double>());
    if (step == 0) {
      outcome.total = terms.total;
      for (const auto& p : model->parameters())
        outcome.grads.push_back(
            p.grad().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous());
    }
    optimizer.step();
  }
  return outcome;
}

StepCompute with(TrainConfig::Precision precision, bool channels_last) {
  StepCompute compute;
  compute.precision = precision;
  compute.channels_last = channels_last;
  return compute;
}

torch::Tensor flat(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.reshape({-1}));
  return torch::cat(parts);
}

// ‖a − b‖ / ‖b‖ over the whole gradient.
double relative_error(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  const auto fb = flat(b);
  return ((flat(a) - fb).norm() / fb.norm()).item<double>();
}

double cosine(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  const auto fa = flat(a);
  const auto fb = flat(b);
  return ((fa * fb).sum() / (fa.norm() * fb.norm())).item<double>();
}

const torch::Device kCpu(torch::kCPU);

// The curves: 8 SGD steps on one batch. Small-batch BatchNorm amplifies any difference from step to
// step: float32 in another summation order (channels-last) drifts 1.1 % from the NCHW curve by
// step 8 on the CI machine (LibTorch 1.13, oneDNN), so a curve is compared within a few times that.
constexpr int kCurveSteps = 8;

TEST(StepCompute, channels_last_computes_the_float32_step_up_to_summation_order) {
  const auto config = parity_config();
  const auto plain = run_steps(config, kCpu, with(TrainConfig::FP32, false), kCurveSteps);
  const auto nhwc = run_steps(config, kCpu, with(TrainConfig::FP32, true), kCurveSteps);
  // The first step sees the same weights: float32 rounding in another order only (measured: equal
  // losses, 8e-4 relative gradient difference, most of it in BatchNorm biases whose sums cancel).
  EXPECT_NEAR(nhwc.losses[0], plain.losses[0], 1e-5 * std::abs(plain.losses[0]));
  EXPECT_LT(relative_error(nhwc.grads, plain.grads), 5e-3);
  for (int s = 1; s < kCurveSteps; ++s) {
    EXPECT_NEAR(nhwc.losses[s], plain.losses[s], 0.03 * std::abs(plain.losses[s]))
        << "step " << s + 1;
  }
}

TEST(StepCompute, channels_last_keeps_weights_and_gradients_in_that_layout) {
  const auto config = parity_config();
  const auto compute = with(TrainConfig::FP32, true);
  HdsNet model = model_on(config, kCpu, compute);
  const Batch batch = fixed_batch(kCpu);
  hds::trainer::forward_and_loss(model, batch.images, batch.masks, batch.labels, config.loss(),
                                 hds::trainer::seg_head_weights(config, 1),
                                 hds::trainer::cls_head_weights(config, 1), compute)
      .total.backward();
  int convolutions = 0;
  for (const auto& p : model->parameters()) {
    if (p.dim() != 4 || p.size(2) == 1) continue;  // 1x1 kernels are both layouts at once
    ++convolutions;
    EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.sizes();
    EXPECT_TRUE(p.grad().is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.sizes();
  }
  EXPECT_GT(convolutions, 10);
}

// bfloat16 keeps 8 significant bits (relative rounding up to 2^-8 = 0.4 %). The loss averages
// that out (measured: 0.05 % at step 1, at most 3.7 % along the curve). Gradients do not: a
// BatchNorm bias's gradient is a sum of bfloat16 output gradients that nearly cancel, so the
// whole gradient is 70 % off in norm yet points the same way (cosine 0.72, measured).
TEST(StepCompute, bf16_autocast_follows_the_float32_loss_curve) {
  const auto config = parity_config();
  const auto fp32 = run_steps(config, kCpu, with(TrainConfig::FP32, false), kCurveSteps);
  const auto bf16 = run_steps(config, kCpu, with(TrainConfig::BF16, false), kCurveSteps);
  EXPECT_NEAR(bf16.losses[0], fp32.losses[0], 0.005 * std::abs(fp32.losses[0]));
  // Not float32 in disguise: bfloat16 rounding shows in the loss.
  EXPECT_NE(bf16.losses[0], fp32.losses[0]);
  for (int s = 1; s < kCurveSteps; ++s) {
    EXPECT_NEAR(bf16.losses[s], fp32.losses[s], 0.08 * std::abs(fp32.losses[s]))
        << "step " << s + 1;
  }
  EXPECT_GT(cosine(bf16.grads, fp32.grads), 0.5);
  // The curve goes down, as float32's does.
  EXPECT_LT(bf16.losses.back(), 0.8 * bf16.losses.front());
  EXPECT_LT(fp32.losses.back(), 0.8 * fp32.losses.front());
}

TEST(StepCompute, bf16_losses_weights_and_gradients_are_float32) {
  const auto config = parity_config();
  const auto bf16 = run_steps(config, kCpu, with(TrainConfig::BF16, false), 1);
  EXPECT_EQ(bf16.total.scalar_type(), torch::kFloat);
  for (const auto& g : bf16.grads) EXPECT_EQ(g.scalar_type(), torch::kFloat);
}

TEST(StepCompute, bf16_training_on_the_cpu_is_refused_by_name) {
  auto train = parity_config().train();
  train.set_precision(TrainConfig::BF16);
  try {
    hds::trainer::step_compute(train, kCpu);
    FAIL() << "BF16 on the CPU was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("train.precision = BF16"), std::string::npos) << e.what();
  }
  train.set_precision(TrainConfig::FP32);
  train.set_channels_last(true);
  EXPECT_TRUE(hds::trainer::step_compute(train, kCpu).channels_last);
}

TEST(StepCompute, autocast_ends_with_the_forward_pass) {
  const auto config = parity_config();
  run_steps(config, kCpu, with(TrainConfig::BF16, false), 1);
  // A convolution after the step is float32 again.
  const auto out = torch::conv2d(torch::randn({1, 1, 8, 8}), torch::randn({1, 1, 3, 3}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat);
}

// The CUDA step against the CPU step on the same weights and batch (HDS_TEST_DEVICE is not
// needed: the test runs wherever LibTorch sees a GPU). cuDNN may round convolution inputs to TF32
// (10 significant bits) and sums with atomics in a varying order, so float32 is held to the
// channels-last tolerances above on the curve and to a gradient cosine of 0.99; bfloat16 to its
// own CPU tolerances.
TEST(StepCompute, a_cuda_step_matches_the_cpu_step) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const auto config = parity_config();
  const torch::Device cuda(torch::kCUDA, 0);
  const auto cpu = run_steps(config, kCpu, with(TrainConfig::FP32, false), kCurveSteps);
  struct Case {
    StepCompute compute;
    double curve_tolerance, min_cosine;
  };
  for (const Case& c : {Case{with(TrainConfig::FP32, false), 0.03, 0.99},
                        Case{with(TrainConfig::FP32, true), 0.03, 0.99},
                        Case{with(TrainConfig::BF16, true), 0.08, 0.5}}) {
    const auto gpu = run_steps(config, cuda, c.compute, kCurveSteps);
    const std::string what = TrainConfig::Precision_Name(c.compute.precision) +
                             (c.compute.channels_last ? " channels-last" : " NCHW");
    for (int s = 0; s < kCurveSteps; ++s) {
      EXPECT_NEAR(gpu.losses[s], cpu.losses[s], c.curve_tolerance * std::abs(cpu.losses[s]))
          << what << ", step " << s + 1;
    }
    EXPECT_GT(cosine(gpu.grads, cpu.grads), c.min_cosine) << what;
  }
}

}  // namespace

// Head-weight decay and learning-rate steps of the paper's schedule, the schedules and optimizers
// beyond it (docs/design.md §3), each against a hand computation.
#include "hds/trainer/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "hds/config/config.h"
#include "hds/trainer/optimizer.h"

namespace hds::trainer {
namespace {

const std::vector<double> kInitial = {3.5, 3.0, 2.5, 2.0, 1.5, 1.0};

TEST(HeadWeights, start_at_the_paper_values_and_decay_all_but_the_last_head) {
  const auto config = hds::config::paper_config();
  const double d_seg = std::pow(0.005, 1.0 / 2800);
  const double d_cls = std::pow(0.05, 1.0 / 2800);
  const auto seg1 = seg_head_weights(config, 1);
  const auto seg2 = seg_head_weights(config, 2);
  const auto seg_last = seg_head_weights(config, 2800);
  const auto cls2 = cls_head_weights(config, 2);
  const auto cls_last = cls_head_weights(config, 2800);
  for (int head = 0; head < 5; ++head) {
    EXPECT_DOUBLE_EQ(seg1[head], kInitial[head]);
    EXPECT_NEAR(seg2[head], kInitial[head] * d_seg, 1e-12);
    EXPECT_NEAR(cls2[head], kInitial[head] * d_cls, 1e-12);
    EXPECT_NEAR(seg_last[head], kInitial[head] * std::pow(0.005, 2799.0 / 2800), 1e-9);
    EXPECT_NEAR(cls_last[head], kInitial[head] * std::pow(0.05, 2799.0 / 2800), 1e-9);
  }
  EXPECT_EQ(seg_last[5], 1.0);
  EXPECT_EQ(cls_last[5], 1.0);
}

TEST(LearningRate, steps_by_gamma_after_each_milestone_epoch) {
  const auto optimizer = hds::config::paper_config();
  EXPECT_DOUBLE_EQ(learning_rate(optimizer, 1), 0.01);
  EXPECT_DOUBLE_EQ(learning_rate(optimizer, 1000), 0.01);
  EXPECT_NEAR(learning_rate(optimizer, 1001), 0.003, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 1801), 0.0009, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2410), 0.00027, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2411), 0.000081, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2800), 0.000081, 1e-15);
  EXPECT_THROW(learning_rate(optimizer, 0), std::invalid_argument);
}

TEST(LearningRate, poly_decays_from_the_base_rate_towards_zero_by_the_last_epoch) {
  auto config = hds::config::paper_config();
  config.mutable_train()->set_epochs(10);
  config.mutable_optimizer()->set_schedule(hds::config::OptimizerConfig::POLY);
  config.mutable_optimizer()->set_poly_power(2);
  // lr * (1 - (e - 1) / 10)^2, by hand: epoch 1 0.01, epoch 6 0.01 * 0.25, epoch 10 0.01 * 0.01.
  EXPECT_DOUBLE_EQ(learning_rate(config, 1), 0.01);
  EXPECT_NEAR(learning_rate(config, 6), 0.0025, 1e-15);
  EXPECT_NEAR(learning_rate(config, 10), 0.0001, 1e-15);
  // The paper's milestones (1000, ...) are not used by POLY.
  config.mutable_train()->set_epochs(2000);
  EXPECT_NEAR(learning_rate(config, 1001), 0.01 * 0.25, 1e-15);
}

TEST(LearningRate, warm_up_scales_the_first_epochs_linearly) {
  auto config = hds::config::paper_config();
  config.mutable_optimizer()->set_warmup_epochs(3);
  // epoch e <= 3: 0.01 * e / 4; then the paper's rate.
  EXPECT_DOUBLE_EQ(learning_rate(config, 1), 0.0025);
  EXPECT_DOUBLE_EQ(learning_rate(config, 3), 0.0075);
  EXPECT_DOUBLE_EQ(learning_rate(config, 4), 0.01);
  EXPECT_NEAR(learning_rate(config, 1001), 0.003, 1e-15);
}

// One step of each optimizer on w = (1, -2) with the gradient of L = 3·w0 + 0.5·w1, i.e. (3, 0.5).
torch::Tensor one_step(const hds::config::OptimizerConfig& config) {
  auto w = torch::tensor({1.0, -2.0}, torch::kDouble).requires_grad_(true);
  const auto optimizer = make_optimizer({w}, config);
  (3 * w[0] + 0.5 * w[1]).backward();
  optimizer->step();
  return w.detach();
}

TEST(Optimizer, sgd_adds_the_weight_decay_to_the_gradient) {
  hds::config::OptimizerConfig config;  // SGD, lr 0.01, weight decay 5e-4
  const auto w = one_step(config);
  // First step: the momentum buffer is the gradient itself; w -= lr * (g + decay * w).
  EXPECT_NEAR(w[0].item<double>(), 1 - 0.01 * (3 + 5e-4 * 1), 1e-12);
  EXPECT_NEAR(w[1].item<double>(), -2 - 0.01 * (0.5 + 5e-4 * -2), 1e-12);
}

TEST(Optimizer, adamw_decays_the_weights_apart_from_the_adaptive_step) {
  hds::config::OptimizerConfig config;
  config.set_kind(hds::config::OptimizerConfig::ADAMW);
  config.set_learning_rate(0.1);
  config.set_weight_decay(0.2);
  const auto w = one_step(config);
  // First step, bias-corrected: m^ = g, v^ = g^2, so the step is lr * g / (|g| + 1e-8) = lr * sign
  // of g, whatever its size; the decay multiplies w by (1 - lr * decay) first.
  const double decayed = 1 - 0.1 * 0.2;
  EXPECT_NEAR(w[0].item<double>(), 1 * decayed - 0.1, 1e-7);
  EXPECT_NEAR(w[1].item<double>(), -2 * decayed - 0.1, 1e-7);
}

TEST(Optimizer, set_learning_rate_reaches_every_group_of_either_kind) {
  for (const auto kind : {hds::config::OptimizerConfig::SGD, hds::config::OptimizerConfig::ADAMW}) {
    hds::config::OptimizerConfig config;
    config.set_kind(kind);
    auto w = torch::zeros({2}, torch::kDouble).requires_grad_(true);
    const auto optimizer = make_optimizer({w}, config);
    set_learning_rate(*optimizer, 0.125);
    for (const auto& group : optimizer->param_groups())
      EXPECT_EQ(group.options().get_lr(), 0.125) << hds::config::OptimizerConfig::Kind_Name(kind);
  }
}

TEST(HeadTerms, follow_the_table1_variant) {
  using hds::config::LossConfig;
  EXPECT_TRUE(head_terms(LossConfig::HDS, 0).segmentation);
  EXPECT_TRUE(head_terms(LossConfig::HDS, 0).classification);
  EXPECT_FALSE(head_terms(LossConfig::MULTITASK_LAST_HEAD, 4).segmentation);
  EXPECT_TRUE(head_terms(LossConfig::MULTITASK_LAST_HEAD, 5).classification);
  EXPECT_FALSE(head_terms(LossConfig::CLS_DEEP_SUPERVISION, 3).segmentation);
  EXPECT_FALSE(head_terms(LossConfig::SEG_DEEP_SUPERVISION, 3).classification);
}

}  // namespace
}  // namespace hds::trainer

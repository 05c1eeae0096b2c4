// Head-weight decay and learning-rate steps of the paper's schedule (docs/design.md §3).
#include "hds/trainer/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "hds/config/config.h"

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
  const auto optimizer = hds::config::paper_config().optimizer();
  EXPECT_DOUBLE_EQ(learning_rate(optimizer, 1), 0.01);
  EXPECT_DOUBLE_EQ(learning_rate(optimizer, 1000), 0.01);
  EXPECT_NEAR(learning_rate(optimizer, 1001), 0.003, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 1801), 0.0009, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2410), 0.00027, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2411), 0.000081, 1e-15);
  EXPECT_NEAR(learning_rate(optimizer, 2800), 0.000081, 1e-15);
  EXPECT_THROW(learning_rate(optimizer, 0), std::invalid_argument);
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

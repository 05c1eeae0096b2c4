// Each loss against a hand computation on tiny tensors (docs/design.md §3).
#include <gtest/gtest.h>

#include <cmath>

#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/trainer/losses.h"

namespace hds::trainer {
namespace {
using hds::config::LossConfig;

// Two-class cross-entropy of logits (bg, fg) for a label, written out by hand.
double ce(double bg, double fg, int label) {
  const double log_sum = std::log(std::exp(bg) + std::exp(fg));
  return log_sum - (label == 1 ? fg : bg);
}
double fg_probability(double bg, double fg) { return std::exp(fg) / (std::exp(bg) + std::exp(fg)); }

TEST(SegmentationLoss, is_the_pixel_mean_cross_entropy) {
  // One image, 1x2 pixels: (bg, fg) = (0, 1) and (2, 0), both mass pixels.
  const auto logits = torch::tensor({0.0, 2.0, 1.0, 0.0}, torch::kFloat).view({1, 2, 1, 2});
  const auto mask = torch::tensor({1, 1}, torch::kLong).view({1, 1, 2});
  const double expected = (ce(0, 1, 1) + ce(2, 0, 1)) / 2;
  EXPECT_NEAR(segmentation_loss(logits, mask).item<double>(), expected, 1e-6);
}

TEST(DiceLoss, is_one_minus_the_smoothed_soft_dice_over_the_whole_batch) {
  // Two images of 1x2 pixels; mass pixels: image 0 pixel 0, image 1 none.
  // Logits (bg, fg): (0, 1), (2, 0) | (0, 0), (1, -1).
  const auto logits =
      torch::tensor({0.0, 2.0, 1.0, 0.0, 0.0, 1.0, 0.0, -1.0}, torch::kFloat).view({2, 2, 1, 2});
  const auto mask = torch::tensor({1, 0, 0, 0}, torch::kLong).view({2, 1, 2});
  const double p[] = {fg_probability(0, 1), fg_probability(2, 0), fg_probability(0, 0),
                      fg_probability(1, -1)};
  const double overlap = p[0];
  const double expected = 1 - (2 * overlap + 1) / (p[0] + p[1] + p[2] + p[3] + 1 + 1);
  EXPECT_NEAR(dice_loss(logits, mask).item<double>(), expected, 1e-6);
}

TEST(DiceLoss, is_near_zero_for_a_confident_right_mask_and_near_one_for_a_wrong_one) {
  const auto mask = torch::tensor({1, 1, 0, 0}, torch::kLong).view({1, 2, 2});
  const auto right = torch::stack({(1 - mask) * 20.0, mask * 20.0}, 1).to(torch::kFloat);
  const auto wrong = torch::stack({mask * 20.0, (1 - mask) * 20.0}, 1).to(torch::kFloat);
  EXPECT_LT(dice_loss(right, mask).item<double>(), 0.25);  // 1 - 5/5 at the limit, smoothing aside
  EXPECT_GT(dice_loss(wrong, mask).item<double>(), 0.66);  // 1 - 1/5 - ... at the limit: 0.8
}

TEST(SegmentationTerm, adds_the_weighted_dice_loss_only_when_configured) {
  const auto logits = torch::tensor({0.0, 2.0, 1.0, 0.0}, torch::kFloat).view({1, 2, 1, 2});
  const auto mask = torch::tensor({1, 0}, torch::kLong).view({1, 1, 2});
  LossConfig config;
  const double ce_only = segmentation_loss(logits, mask).item<double>();
  EXPECT_DOUBLE_EQ(segmentation_term(logits, mask, config).item<double>(), ce_only);
  config.set_segmentation(LossConfig::CROSS_ENTROPY_DICE);
  config.set_dice_weight(0.5);
  EXPECT_NEAR(segmentation_term(logits, mask, config).item<double>(),
              ce_only + 0.5 * dice_loss(logits, mask).item<double>(), 1e-6);
}

// Two samples, a 1x3 map each. Sample 0: bg (0.5, -1, -1) fg (0.1, 0.3, 0.9); sample 1: bg (2, 1,
// 3), fg (0, 0, 0).
torch::Tensor mil_logits() {
  return torch::tensor({0.5, -1.0, -1.0, 0.1, 0.3, 0.9,  //
                        2.0, 1.0, 3.0, 0.0, 0.0, 0.0},
                       torch::kFloat)
      .view({2, 2, 1, 3});
}

TEST(MilLoss, picks_the_smallest_background_logit_first_on_ties) {
  const auto index = mil_instance(mil_logits(), LossConfig::MIN_BACKGROUND_LOGIT);
  EXPECT_EQ(index[0].item<int64_t>(), 1);  // -1 at 1 and 2: the first wins
  EXPECT_EQ(index[1].item<int64_t>(), 1);
}

TEST(MilLoss, paper_rule_picks_the_largest_foreground_probability) {
  const auto index = mil_instance(mil_logits(), LossConfig::MAX_FOREGROUND_PROBABILITY);
  EXPECT_EQ(index[0].item<int64_t>(), 2);  // fg - bg = 1.9 is the largest
  EXPECT_EQ(index[1].item<int64_t>(), 1);
}

TEST(MilLoss, is_the_chosen_instance_cross_entropy_plus_the_sparsity_term) {
  const auto labels = torch::tensor({1, 0}, torch::kLong);
  const double mu = 0.25;
  const double bag = (ce(-1.0, 0.3, 1) + ce(1.0, 0.0, 0)) / 2;
  const double foreground_sum = fg_probability(0.5, 0.1) + fg_probability(-1, 0.3) +
                                fg_probability(-1, 0.9) + fg_probability(2, 0) +
                                fg_probability(1, 0) + fg_probability(3, 0);
  const double expected = bag + mu * foreground_sum / 2;
  EXPECT_NEAR(mil_loss(mil_logits(), labels, LossConfig::MIN_BACKGROUND_LOGIT, mu).item<double>(),
              expected, 1e-6);
  const double paper_bag = (ce(-1.0, 0.9, 1) + ce(1.0, 0.0, 0)) / 2;
  EXPECT_NEAR(
      mil_loss(mil_logits(), labels, LossConfig::MAX_FOREGROUND_PROBABILITY, 0).item<double>(),
      paper_bag, 1e-6);
}

TEST(MilLoss, without_sparsity_only_the_chosen_instance_gets_a_gradient) {
  auto logits = mil_logits().requires_grad_(true);
  mil_loss(logits, torch::tensor({1, 0}, torch::kLong), LossConfig::MIN_BACKGROUND_LOGIT, 0)
      .backward();
  const auto grad = logits.grad().view({2, 2, 3});
  for (int64_t sample = 0; sample < 2; ++sample) {
    for (int64_t instance = 0; instance < 3; ++instance) {
      const bool chosen = instance == 1;
      const double magnitude = grad[sample].select(1, instance).abs().sum().item<double>();
      EXPECT_EQ(magnitude > 0, chosen) << "sample " << sample << " instance " << instance;
    }
  }
}

TEST(ImageProbability, is_the_softmax_at_the_mil_instance) {
  const auto p = image_probability(mil_logits(), LossConfig::MIN_BACKGROUND_LOGIT);
  EXPECT_NEAR(p[0].item<double>(), fg_probability(-1, 0.3), 1e-6);
  EXPECT_NEAR(p[1].item<double>(), fg_probability(1, 0), 1e-6);
}

// Two heads (2 and 5) with hand-made outputs.
struct TwoHeads {
  HdsOutput output;
  torch::Tensor mask = torch::tensor({1, 0}, torch::kLong).view({1, 1, 2});
  torch::Tensor labels = torch::tensor({1}, torch::kLong);
  TwoHeads() {
    output.seg = {torch::tensor({0.0, 2.0, 1.0, 0.0}).view({1, 2, 1, 2}),
                  torch::tensor({1.0, -1.0, 0.5, 0.5}).view({1, 2, 1, 2})};
    output.cls = {torch::tensor({0.2, 0.7}).view({1, 2, 1, 1}),
                  torch::tensor({-0.3, 0.4}).view({1, 2, 1, 1})};
  }
};

TEST(HdsLoss, weights_each_head_and_scales_classification_by_alpha) {
  TwoHeads h;
  LossConfig config = hds::config::paper_config().loss();
  config.set_sparsity_mu(0);
  const std::vector<double> seg_w = {0, 0, 2.5, 0, 0, 1.0};
  const std::vector<double> cls_w = {0, 0, 0.7, 0, 0, 1.3};
  const auto terms = hds_loss(h.output, {2, 5}, h.mask, h.labels, config, seg_w, cls_w);
  const double seg2 = (ce(0, 1, 1) + ce(2, 0, 0)) / 2;
  const double seg5 = (ce(1, 0.5, 1) + ce(-1, 0.5, 0)) / 2;
  const double cls2 = ce(0.2, 0.7, 1);
  const double cls5 = ce(-0.3, 0.4, 1);
  const double expected = 2.5 * seg2 + 1.0 * seg5 + 0.03 * (0.7 * cls2 + 1.3 * cls5);
  EXPECT_NEAR(terms.total.item<double>(), expected, 1e-6);
  EXPECT_NEAR(terms.seg_weighted_sum + terms.cls_weighted_sum, expected, 1e-6);
  EXPECT_NEAR(terms.seg[0], seg2, 1e-6);
  EXPECT_NEAR(terms.cls[1], cls5, 1e-6);
}

TEST(HdsLoss, table1_variants_switch_the_terms) {
  TwoHeads h;
  const std::vector<double> w(6, 1.0);
  auto run = [&](LossConfig::Variant variant) {
    LossConfig config = hds::config::paper_config().loss();
    config.set_variant(variant);
    return hds_loss(h.output, {2, 5}, h.mask, h.labels, config, w, w);
  };
  const auto last = run(LossConfig::MULTITASK_LAST_HEAD);
  EXPECT_EQ(last.seg_on, (std::vector<bool>{false, true}));
  EXPECT_EQ(last.cls_on, (std::vector<bool>{false, true}));
  const auto cls_only = run(LossConfig::CLS_DEEP_SUPERVISION);
  EXPECT_EQ(cls_only.seg_on, (std::vector<bool>{false, false}));
  EXPECT_EQ(cls_only.cls_on, (std::vector<bool>{true, true}));
  EXPECT_EQ(cls_only.seg_weighted_sum, 0);
  const auto seg_only = run(LossConfig::SEG_DEEP_SUPERVISION);
  EXPECT_EQ(seg_only.cls_on, (std::vector<bool>{false, false}));
  EXPECT_NEAR(seg_only.total.item<double>(), seg_only.seg[0] + seg_only.seg[1], 1e-6);
}

}  // namespace
}  // namespace hds::trainer

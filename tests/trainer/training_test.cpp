// The training loop on phantom data: it learns, resumes bit-identically, and stops on NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "hds/trainer/checkpoint.h"
#include "hds/trainer/schedule.h"
#include "hds/trainer/training.h"
#include "test_support.h"

namespace hds::trainer {
namespace {
namespace fs = std::filesystem;

FitResult quiet_fit(const hds::config::Config& config, FitOptions options = {}) {
  std::ostringstream log;
  options.log = &log;
  return fit(config, options);
}

std::vector<std::pair<std::string, torch::Tensor>> final_state(const std::string& run_dir,
                                                               const hds::config::Config& config) {
  HdsNet model(config.model());
  load_checkpoint((fs::path(run_dir) / "checkpoints").string(), model, nullptr);
  return ordered_state_dict(*model);
}

TEST(Fit, a_few_dozen_steps_on_phantoms_lower_the_full_resolution_loss) {
  const auto dir = hds::test::scratch_dir("fit-learns");
  // 8 films, batch 4: 2 steps an epoch, 36 steps.
  const auto config = hds::test::tiny_config(dir, {"train.epochs=18", "train.validate_every=6",
                                                   "train.validate_from=6"});
  std::vector<double> last_head_loss;  // head 5 never decays: its loss moves by learning alone
  FitOptions options;
  options.on_step = [&](const StepReport& r) { last_head_loss.push_back(r.seg.back() + r.cls.back()); };
  const auto result = quiet_fit(config, options);
  ASSERT_EQ(last_head_loss.size(), 36u);
  EXPECT_TRUE(result.finished);
  const double first = std::accumulate(last_head_loss.begin(), last_head_loss.begin() + 6, 0.0) / 6;
  const double last = std::accumulate(last_head_loss.end() - 6, last_head_loss.end(), 0.0) / 6;
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  EXPECT_EQ(result.best_dice.epoch() % 6, 0);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "checkpoints" / "best-dice"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "checkpoints" / "best-accuracy"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "summary.json"));
}

TEST(Fit, reports_the_norm_of_the_gradient_it_applied) {
  const auto dir = hds::test::scratch_dir("fit-gradient-norm");
  // Plain SGD: one step moves the weights by exactly -lr * gradient.
  const auto config = hds::test::tiny_config(
      dir, {"optimizer.momentum=0", "optimizer.weight_decay=0", "train.epochs=1"});
  torch::manual_seed(config.train().seed());  // fit's initialisation
  HdsNet initial(config.model());
  double reported = -1;
  FitOptions options;
  options.stop_at_step = 1;
  options.on_step = [&](const StepReport& r) { reported = r.gradient_norm; };
  quiet_fit(config, options);
  HdsNet stepped(config.model());
  load_checkpoint((fs::path(dir) / "checkpoints").string(), stepped, nullptr);
  double moved = 0;
  const auto before = initial->parameters();
  const auto after = stepped->parameters();
  for (size_t i = 0; i < before.size(); ++i) moved += (after[i] - before[i]).pow(2).sum().item<double>();
  const double lr = learning_rate(config.optimizer(), 1);
  ASSERT_GT(reported, 0);
  EXPECT_NEAR(std::sqrt(moved) / lr, reported, 1e-3 * reported);
}

TEST(Fit, stop_and_resume_gives_bit_identical_parameters) {
  const auto straight_dir = hds::test::scratch_dir("fit-straight");
  const auto resumed_dir = hds::test::scratch_dir("fit-resumed");
  const auto straight_config = hds::test::tiny_config(straight_dir);
  const auto resumed_config = hds::test::tiny_config(resumed_dir);

  const auto straight = quiet_fit(straight_config);
  ASSERT_TRUE(straight.finished);

  // 2 steps an epoch: step 5 is the middle of epoch 3, after a validation at epoch 2.
  FitOptions stop_early;
  stop_early.stop_at_step = 5;
  const auto first_part = quiet_fit(resumed_config, stop_early);
  ASSERT_FALSE(first_part.finished);
  EXPECT_EQ(first_part.global_step, 5);
  FitOptions resume;
  resume.resume_from = (fs::path(resumed_dir) / "checkpoints").string();
  const auto second_part = quiet_fit(resumed_config, resume);
  ASSERT_TRUE(second_part.finished);
  EXPECT_EQ(second_part.global_step, straight.global_step);
  EXPECT_EQ(second_part.best_dice.epoch(), straight.best_dice.epoch());
  EXPECT_EQ(second_part.last_validation.dice(), straight.last_validation.dice());

  const auto a = final_state(straight_dir, straight_config);
  const auto b = final_state(resumed_dir, resumed_config);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " differs";
  }
}

TEST(Fit, a_non_finite_loss_names_the_step_the_head_and_the_last_checkpoint) {
  const auto dir = hds::test::scratch_dir("fit-nan");
  FitOptions stop_early;
  stop_early.stop_at_step = 2;
  quiet_fit(hds::test::tiny_config(dir), stop_early);
  // An absurd learning rate blows the weights up within a step or two.
  const auto exploding = hds::test::tiny_config(dir, {"optimizer.learning_rate=1e30"});
  FitOptions resume;
  resume.resume_from = (fs::path(dir) / "checkpoints").string();
  try {
    quiet_fit(exploding, resume);
    FAIL() << "training went on with a learning rate of 1e30";
  } catch (const NonFiniteLossError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("step"), std::string::npos) << what;
    EXPECT_NE(what.find("head"), std::string::npos) << what;
    EXPECT_NE(what.find("step-000000002"), std::string::npos) << what;
  }
}

TEST(Fit, resuming_with_another_model_is_refused) {
  const auto dir = hds::test::scratch_dir("fit-other-model");
  FitOptions stop_early;
  stop_early.stop_at_step = 1;
  quiet_fit(hds::test::tiny_config(dir), stop_early);
  FitOptions resume;
  resume.resume_from = (fs::path(dir) / "checkpoints").string();
  EXPECT_THROW(quiet_fit(hds::test::tiny_config(dir, {"model.blocks_per_stage=2"}), resume),
               CheckpointError);
}

}  // namespace
}  // namespace hds::trainer

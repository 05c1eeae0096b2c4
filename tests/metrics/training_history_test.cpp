// history.jsonl and curves.svg: interval means per head, validation rows, the SVG redrawn at each
// validation, and a resumed run that drops the rows of the steps it redoes.
#include "hds/trainer/training_history.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "hds/test/files.h"

namespace hds::trainer {
namespace {

namespace fs = std::filesystem;

// Heads 3 and 5; losses chosen so that interval means are exact in binary.
StepReport step(int64_t global_step, int epoch, int step_in_epoch, double seg3) {
  StepReport r;
  r.epoch = epoch;
  r.step = step_in_epoch;
  r.steps_per_epoch = 4;
  r.global_step = global_step;
  r.heads = {3, 5};
  r.seg = {seg3, 0.5};
  r.cls = {0.25, 0.125};
  r.loss = 2 * seg3;
  r.learning_rate = 0.01;
  return r;
}

hds::checkpoint::ValidationResult validation(int epoch, double dice) {
  hds::checkpoint::ValidationResult v;
  v.set_epoch(epoch);
  v.set_dice(dice);
  v.set_accuracy(0.75);
  v.set_auc(0.5);
  return v;
}

TEST(TrainingHistory, keeps_interval_means_per_head_and_validations_and_draws_the_curves) {
  const std::string dir = hds::test::scratch_dir("history-means");
  {
    TrainingHistory history(dir, 2);
    history.on_step(step(1, 1, 1, 1.0));
    history.on_step(step(2, 1, 2, 2.0));  // interval of 2: mean 1.5
    history.on_step(step(3, 1, 3, 4.0));
    history.on_step(step(4, 1, 4, 8.0));  // the epoch's end
    EXPECT_FALSE(fs::exists(dir + "/curves.svg")) << "drawn before any validation";
    history.on_validation(validation(1, 0.25), validation(1, 0.25));
    EXPECT_TRUE(fs::exists(dir + "/curves.svg"));
    const auto& rows = history.rows();
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].step, 2);
    EXPECT_EQ(rows[0].steps, 2);
    EXPECT_EQ(rows[0].seg[3], 1.5);
    EXPECT_EQ(rows[0].seg[5], 0.5);
    EXPECT_TRUE(std::isnan(rows[0].seg[0])) << "an unbuilt head has a value";
    EXPECT_EQ(rows[0].loss, 3.0);
    EXPECT_EQ(rows[1].seg[3], 6.0);
    EXPECT_TRUE(rows[2].validation);
    EXPECT_EQ(rows[2].step, 4);
    EXPECT_EQ(rows[2].dice, 0.25);
  }
  const std::string svg = hds::test::read_text(dir + "/curves.svg");
  for (const char* text : {"Segmentation loss per head", "MIL loss per head", "Learning rate",
                           "Validation", "head 3", "head 5", "Dice"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(svg.find("head 0"), std::string::npos) << "an unbuilt head is in the legend";
  EXPECT_FALSE(fs::exists(dir + "/curves.svg.partial"));
}

TEST(TrainingHistory, a_resumed_run_drops_the_rows_it_redoes_and_ignores_a_cut_line) {
  const std::string dir = hds::test::scratch_dir("history-resume");
  {
    TrainingHistory history(dir, 1);
    for (int s = 1; s <= 6; ++s) history.on_step(step(s, (s - 1) / 4 + 1, (s - 1) % 4 + 1, s));
    history.on_validation(validation(1, 0.5), validation(1, 0.5));
  }
  // A crash cut the last line short.
  std::ofstream(dir + "/history.jsonl", std::ios::app) << "{\"step\": 7, \"epo";
  // The run resumes from the checkpoint at global step 4: steps 5.. are done again.
  TrainingHistory resumed(dir, 1);
  ASSERT_EQ(resumed.rows().size(), 7u);  // 6 steps and the validation after step 6
  resumed.on_step(step(5, 2, 1, 50.0));
  ASSERT_EQ(resumed.rows().size(), 5u);
  EXPECT_EQ(resumed.rows()[3].step, 4);
  EXPECT_EQ(resumed.rows()[4].step, 5);
  EXPECT_EQ(resumed.rows()[4].seg[3], 50.0);
  // The file holds the same rows: a third run reads them back.
  TrainingHistory again(dir, 1);
  ASSERT_EQ(again.rows().size(), 5u);
  EXPECT_EQ(again.rows()[4].seg[3], 50.0);
}

}  // namespace
}  // namespace hds::trainer

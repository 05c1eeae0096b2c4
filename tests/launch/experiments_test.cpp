// `hds-launch cv` and `hds-launch ablation` end to end: real jobs (data service, mpirun, a
// trainer rank) on phantom folds, evaluated by hds-trainer eval; a cross-validation stopped by a
// signal and resumed, and the four loss variants of the ablation.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "launch_test_support.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

// Bounds on waits, generous for a loaded 2-core machine; none is a timing assertion.
constexpr double kRunSeconds = 400;
constexpr double kStopSeconds = 90;

// 12 phantom films of 128x128, half with masses, pooled into folds (4 films each with 3 folds); a
// model of a few thousand parameters, `epochs` epochs of 2 steps, validation every `every`
// epochs. Output under <dir>/run.
std::string write_fold_job(const std::string& dir, int epochs, int every) {
  const std::string path = dir + "/job.pbtxt";
  write_text(path, R"(
model { widths: [4, 4, 8, 8, 8, 8, 8, 8, 8, 4, 4] blocks_per_stage: 1 }
data {
  source: "phantom"
  phantom { train_count: 8 val_count: 2 test_count: 2 seed: 7 mass_free_share: 0.5
            divide_into_folds: true }
  image_rows: 128
  image_cols: 128
  patch_rows: 128
  patch_cols: 128
  cache_dir: ")" + dir +
                       R"(/cache"
}
train {
  epochs: )" + std::to_string(epochs) +
                       R"(
  batch_size: 2
  validate_every: )" + std::to_string(every) +
                       R"(
  validate_from: )" + std::to_string(every) +
                       R"(
  checkpoint_every: )" +
                       std::to_string(every) + R"(
  log_every_steps: 1
  threads: 1
  output_dir: ")" + dir +
                       R"(/run"
}
monitoring { metrics_port: 0 }
)");
  return path;
}

// The film ids of an evaluation's films.csv.
std::set<std::string> evaluated_films(const std::string& eval_dir) {
  std::istringstream csv(read_text(eval_dir + "/films.csv"));
  std::set<std::string> ids;
  std::string line;
  std::getline(csv, line);  // header
  while (std::getline(csv, line)) ids.insert(line.substr(0, line.find(',')));
  return ids;
}

class Experiments : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = testing::why_jobs_cannot_run()) GTEST_SKIP() << *why;
  }

  Command hds_launch(const std::string& dir, const std::vector<std::string>& arguments,
                     const std::string& log, const std::string& parallel = "1") {
    std::vector<std::string> argv = {testing::launch_binary()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    argv.insert(argv.end(), {"--config", dir + "/job.pbtxt", "--np", "1", "--parallel", parallel,
                             "--bootstrap", "20"});
    return Command(argv, dir + "/" + log);
  }
};

TEST_F(Experiments, cv_stopped_by_a_signal_resumes_and_writes_table_two) {
  const std::string dir = scratch_dir("cv-resume");
  write_fold_job(dir, 60, 20);
  const std::vector<std::string> cv = {"cv", "--folds", "3", "--rotations", "0", "1"};
  Command first = hds_launch(dir, cv, "cv.log");
  ASSERT_TRUE(first.wait_for_output("fold-0: evaluated", kRunSeconds)) << first.output();
  ASSERT_TRUE(first.wait_for_output("fold-1: training", kRunSeconds)) << first.output();
  // Stop fold 1 once its job trains (a step line in its log).
  const std::string fold1_log = dir + "/run/cv/fold-1/run.log";
  ASSERT_TRUE(eventually(
      [&] { return read_text(fold1_log).find(" step 1/2") != std::string::npos; }, kRunSeconds))
      << read_text(fold1_log);
  first.signal(SIGTERM);
  ASSERT_EQ(first.wait_exit(kStopSeconds), 75) << first.output();
  EXPECT_NE(first.output().find("fold-1: stopped"), std::string::npos) << first.output();
  EXPECT_NE(first.output().find("the same command resumes"), std::string::npos) << first.output();
  const std::string fold0_metrics = dir + "/run/cv/fold-0/eval/metrics.json";
  ASSERT_TRUE(fs::exists(fold0_metrics));
  EXPECT_FALSE(fs::exists(dir + "/run/cv/fold-1/eval/metrics.json"));
  EXPECT_FALSE(fs::exists(dir + "/run/cv/table2.md"));
  EXPECT_TRUE(processes_mentioning(dir).empty())
      << ::testing::PrintToString(processes_mentioning(dir));
  const auto fold0_written = fs::last_write_time(fold0_metrics);

  Command second = hds_launch(dir, cv, "cv-again.log");
  ASSERT_EQ(second.wait_exit(kRunSeconds), 0) << second.output();
  const std::string output = second.output();
  EXPECT_NE(output.find("fold-0: already evaluated"), std::string::npos) << output;
  EXPECT_EQ(fs::last_write_time(fold0_metrics), fold0_written) << "fold 0 was not redone";
  EXPECT_NE(read_text(fold1_log).find("resumed from"), std::string::npos) << read_text(fold1_log);

  // Table 2 over both folds, beside the baselines; each fold tested on films of its own.
  const std::string table = read_text(dir + "/run/cv/table2.md");
  EXPECT_NE(table.find("Cross-validation: 2 folds"), std::string::npos) << table;
  EXPECT_NE(table.find("| reference | Dice (all films) | "), std::string::npos) << table;
  EXPECT_NE(table.find(" ± "), std::string::npos) << table;
  EXPECT_NE(output.find("Cross-validation: 2 folds"), std::string::npos) << output;
  const auto json = nlohmann::json::parse(read_text(dir + "/run/cv/cv.json"));
  ASSERT_EQ(json.at("runs").size(), 2u);
  EXPECT_EQ(json.at("runs").at(0).at("name"), "fold-0");
  EXPECT_EQ(json.at("runs").at(1).at("split"), "test");
  const std::set<std::string> test0 = evaluated_films(dir + "/run/cv/fold-0/eval");
  const std::set<std::string> test1 = evaluated_films(dir + "/run/cv/fold-1/eval");
  EXPECT_EQ(test0.size(), 4u);
  EXPECT_EQ(test1.size(), 4u);
  for (const std::string& id : test0) EXPECT_EQ(test1.count(id), 0u) << id << " in both folds";
  EXPECT_TRUE(processes_mentioning(dir).empty());
}

TEST_F(Experiments, ablation_trains_each_loss_variant_two_at_a_time_and_writes_table_one) {
  const std::string dir = scratch_dir("ablation");
  write_fold_job(dir, 2, 1);
  Command run = hds_launch(dir, {"ablation"}, "ablation.log", "2");
  ASSERT_EQ(run.wait_exit(kRunSeconds), 0) << run.output();
  EXPECT_NE(run.output().find("4 of 4 run(s) to do, 2 at a time"), std::string::npos)
      << run.output();
  const std::string table = read_text(dir + "/run/ablation/table1.md");
  for (const char* variant :
       {"HDS", "MULTITASK_LAST_HEAD", "CLS_DEEP_SUPERVISION", "SEG_DEEP_SUPERVISION"}) {
    EXPECT_NE(table.find(std::string("\n| ") + variant + " | "), std::string::npos) << table;
    // Each job trained with its own variant.
    const std::string log = read_text(dir + "/run/ablation/" + variant + "/run.log");
    EXPECT_NE(log.find(std::string("loss.variant=") + variant), std::string::npos) << log;
  }
  EXPECT_NE(table.find("| baseline: empty_mask |"), std::string::npos) << table;
  const auto json = nlohmann::json::parse(read_text(dir + "/run/ablation/ablation.json"));
  EXPECT_EQ(json.at("runs").size(), 4u);
}

TEST_F(Experiments, cv_refuses_fixed_splits_and_unknown_rotations) {
  const std::string dir = scratch_dir("cv-refused");
  write_fold_job(dir, 2, 1);
  Command fixed =
      hds_launch(dir, {"cv", "--set", "data.phantom.divide_into_folds=false"}, "fixed.log");
  EXPECT_EQ(fixed.wait_exit(60), 2) << fixed.output();
  EXPECT_NE(fixed.output().find("has fixed splits"), std::string::npos) << fixed.output();
  Command unknown = hds_launch(dir, {"cv", "--folds", "3", "--rotations", "3"}, "unknown.log");
  EXPECT_EQ(unknown.wait_exit(60), 2) << unknown.output();
  EXPECT_NE(unknown.output().find("--rotations: 3 is not in 0..2"), std::string::npos)
      << unknown.output();
  EXPECT_FALSE(fs::exists(dir + "/run/cv"));
}

}  // namespace
}  // namespace hds::launch

// The training loop on phantom data: it learns, resumes bit-identically, and stops on NaN.
#include "hds/trainer/training.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "hds/config/config.h"
#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/test/service_process.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/schedule.h"
#include "hds/transport/shm_ring.h"

namespace hds::trainer {
namespace {

// Gives each step a run reports to `f`.
class OnEachStep : public hds::trainer::TrainingObserver {
 public:
  explicit OnEachStep(std::function<void(const hds::trainer::StepReport&)> f) : f_(std::move(f)) {}
  void on_step(const hds::trainer::StepReport& report) override { f_(report); }

 private:
  std::function<void(const hds::trainer::StepReport&)> f_;
};
namespace fs = std::filesystem;
using hds::test::ServiceProcess;

FitResult quiet_fit(const hds::config::Config& config, FitOptions options = {}) {
  std::ostringstream log;
  options.log = &log;
  return fit(config, options);
}

// The CheckpointError message of a fit; fails the test when there is none.
std::string checkpoint_error_of(const hds::config::Config& config, const FitOptions& options) {
  try {
    quiet_fit(config, options);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no CheckpointError";
  return "";
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
  const auto config = hds::test::tiny_config(
      dir, {"train.epochs=18", "train.validate_every=6", "train.validate_from=6"});
  std::vector<double> last_head_loss;  // head 5 never decays: its loss moves by learning alone
  FitOptions options;
  OnEachStep on_each_step(
      [&](const StepReport& r) { last_head_loss.push_back(r.seg.back() + r.cls.back()); });
  options.observers = {&on_each_step};
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

TEST(Fit, a_lone_small_patch_at_an_epochs_end_sits_out_its_step) {
  const auto dir = hds::test::scratch_dir("fit-lone-patch");
  // 9 films, batch 4: steps of 4, 4 and 1 patch. One 128x128 patch leaves the classifier's
  // deepest BatchNorm one value a channel, which LibTorch refuses in training.
  const auto config = hds::test::tiny_config(
      dir, {"data.phantom={train_count: 9 val_count: 3 test_count: 0 seed: 7}", "train.epochs=2",
            "train.validate_every=2", "train.validate_from=2"});
  std::vector<int> patches_trained;
  FitOptions options;
  OnEachStep on_each_step([&](const StepReport& r) { patches_trained.push_back(r.patches); });
  options.observers = {&on_each_step};
  std::ostringstream log;
  options.log = &log;
  const auto result = fit(config, options);
  EXPECT_TRUE(result.finished);
  EXPECT_EQ(result.global_step, 6);
  EXPECT_EQ(patches_trained, (std::vector<int>{4, 4, 4, 4}));
  EXPECT_NE(log.str().find("sits out its step"), std::string::npos) << log.str();
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
  OnEachStep on_each_step([&](const StepReport& r) { reported = r.gradient_norm; });
  options.observers = {&on_each_step};
  quiet_fit(config, options);
  HdsNet stepped(config.model());
  load_checkpoint((fs::path(dir) / "checkpoints").string(), stepped, nullptr);
  double moved = 0;
  const auto before = initial->parameters();
  const auto after = stepped->parameters();
  for (size_t i = 0; i < before.size(); ++i)
    moved += (after[i] - before[i]).pow(2).sum().item<double>();
  const double lr = learning_rate(config, 1);
  ASSERT_GT(reported, 0);
  EXPECT_NEAR(std::sqrt(moved) / lr, reported, 1e-3 * reported);
}

TEST(Fit, init_from_starts_a_new_schedule_from_another_runs_weights) {
  const auto source_dir = hds::test::scratch_dir("fit-init-source");
  const auto tuned_dir = hds::test::scratch_dir("fit-init-tuned");
  FitOptions stop_early;
  stop_early.stop_at_step = 3;  // mid-epoch 2: a checkpoint that is not at an epoch's start
  quiet_fit(hds::test::tiny_config(source_dir), stop_early);
  const auto source_config = hds::test::tiny_config(source_dir);

  // Plain SGD (one step moves the weights by -lr * gradient) and another dropout: dropout acts
  // only in training, so it may differ from the source run's.
  const auto tuned_config =
      hds::test::tiny_config(tuned_dir, {"optimizer.momentum=0", "optimizer.weight_decay=0",
                                         "model.stage_dropout=[0,0,0,0,0,0,0,0,0,0,0]"});
  FitOptions tune;
  tune.init_from = (fs::path(source_dir) / "checkpoints").string();
  tune.stop_at_step = 1;
  double reported = -1;
  int first_epoch = 0;
  OnEachStep on_each_tuned_step([&](const StepReport& r) {
    reported = r.gradient_norm;
    first_epoch = r.epoch;
  });
  tune.observers = {&on_each_tuned_step};
  const auto tuned = quiet_fit(tuned_config, tune);
  EXPECT_EQ(tuned.global_step, 1);  // a new schedule: step 1 of epoch 1, not step 4
  EXPECT_EQ(first_epoch, 1);
  // The tuned run's first step started from the source's weights: it moved them by exactly
  // lr * |gradient|. From a fresh initialisation the distance would be that of two random nets.
  const auto before = final_state(source_dir, source_config);
  const auto after = final_state(tuned_dir, tuned_config);
  double moved = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    if (!before[i].second.is_floating_point() ||
        before[i].first.find("running") != std::string::npos)
      continue;  // BatchNorm statistics move by their momentum, not by the gradient
    moved += (after[i].second - before[i].second).pow(2).sum().item<double>();
  }
  ASSERT_GT(reported, 0);
  EXPECT_NEAR(std::sqrt(moved) / learning_rate(tuned_config, 1), reported, 1e-3 * reported);
}

TEST(Fit, init_from_refuses_another_architecture_by_name) {
  const auto source_dir = hds::test::scratch_dir("fit-init-other-source");
  FitOptions stop_early;
  stop_early.stop_at_step = 1;
  quiet_fit(hds::test::tiny_config(source_dir), stop_early);
  FitOptions tune;
  tune.init_from = (fs::path(source_dir) / "checkpoints").string();
  const auto wider = hds::test::tiny_config(hds::test::scratch_dir("fit-init-other"),
                                            {"model.widths=[4,8,8,8,8,8,8,8,8,8,4]"});
  const std::string what = checkpoint_error_of(wider, tune);
  EXPECT_NE(what.find("--init-from: " + tune.init_from), std::string::npos) << what;
  EXPECT_NE(what.find("another architecture"), std::string::npos) << what;
}

TEST(Fit, resume_refuses_a_checkpoint_of_another_optimizer_before_loading_it) {
  const auto dir = hds::test::scratch_dir("fit-resume-other-optimizer");
  FitOptions stop_early;
  stop_early.stop_at_step = 1;
  quiet_fit(hds::test::tiny_config(dir), stop_early);
  FitOptions resume;
  resume.resume_from = (fs::path(dir) / "checkpoints").string();
  const std::string what =
      checkpoint_error_of(hds::test::tiny_config(dir, {"optimizer.kind=ADAMW"}), resume);
  EXPECT_NE(what.find("optimizer.kind SGD"), std::string::npos) << what;
  EXPECT_NE(what.find("--init-from"), std::string::npos) << what;
}

TEST(Fit, adamw_with_the_dice_term_resumes_bit_identically) {
  const std::vector<std::string> recipe = {"optimizer.kind=ADAMW", "optimizer.learning_rate=1e-3",
                                           "loss.segmentation=CROSS_ENTROPY_DICE",
                                           "optimizer.schedule=POLY", "optimizer.warmup_epochs=1"};
  const auto straight_dir = hds::test::scratch_dir("fit-adamw-straight");
  const auto resumed_dir = hds::test::scratch_dir("fit-adamw-resumed");
  const auto straight_config = hds::test::tiny_config(straight_dir, recipe);
  const auto resumed_config = hds::test::tiny_config(resumed_dir, recipe);
  ASSERT_TRUE(quiet_fit(straight_config).finished);
  FitOptions stop_early;
  stop_early.stop_at_step = 5;
  quiet_fit(resumed_config, stop_early);
  FitOptions resume;
  resume.resume_from = (fs::path(resumed_dir) / "checkpoints").string();
  ASSERT_TRUE(quiet_fit(resumed_config, resume).finished);
  const auto a = final_state(straight_dir, straight_config);
  const auto b = final_state(resumed_dir, resumed_config);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " differs";
}

// Real films: four mini-MIAS films with a mass (the copy beside the checkout; skipped when absent),
// exported by hds-data-service as a folder dataset that validates on copies of them, trained by
// the shipped overfit recipe at a quarter of its film size for a fixed number of steps. The data
// path and the recipe together must learn them: the last head's loss falls to well below its start
// and the validation Dice on those very films rises far above the all-empty mask's 0 (the paper's
// recipe stays near 0 here: tests/bench/RESULTS.md, "Real data").
TEST(RealFilms, four_mini_mias_masses_are_learnt_within_a_bounded_number_of_steps) {
  const std::string mias = hds::test::shared_data("mini-mias");
  if (mias.empty()) GTEST_SKIP() << "no mini-MIAS copy beside the checkout";
  const auto dir = hds::test::scratch_dir("real-films");
  const std::string source = dir + "/mias.pbtxt";
  hds::test::write_text(source, "data { source: \"mini-mias\" root: \"" + mias + "\" }\n");
  const std::string films = dir + "/films";
  const std::string export_command = std::string("'") + HDS_DATA_SERVICE_BINARY +
                                     "' export --config '" + source + "' --out '" + films +
                                     "' --films mdb005,mdb012,mdb017,mdb021 --validate-on-copies";
  ASSERT_EQ(std::system(export_command.c_str()), 0) << export_command;

  const auto config = hds::config::load_config(
      std::string(HDS_SOURCE_DIR) + "/deploy/configs/mini-mias-overfit.pbtxt",
      {"data.root=" + films, "data.image_rows=256", "data.image_cols=128", "data.patch_rows=128",
       "data.patch_cols=128", "data.use_cache=false", "train.epochs=150", "train.validate_every=10",
       "train.validate_from=10", "train.checkpoint_every=150", "train.threads=1",
       "train.output_dir=" + dir + "/run", "monitoring.metrics_port=0"});
  std::vector<double> last_head;  // the last head's segmentation term (CE + Dice), step by step
  FitOptions options;
  OnEachStep on_each_step([&](const StepReport& r) { last_head.push_back(r.seg.back()); });
  options.observers = {&on_each_step};
  const auto result = quiet_fit(config, options);
  ASSERT_EQ(last_head.size(), 150u);  // 4 films, batch 4: one step an epoch
  const double first = std::accumulate(last_head.begin(), last_head.begin() + 10, 0.0) / 10;
  const double last = std::accumulate(last_head.end() - 10, last_head.end(), 0.0) / 10;
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  EXPECT_GE(result.best_dice.dice(), 0.5) << "at epoch " << result.best_dice.epoch();
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

// Training batches from a real hds-data-service.
TEST(Fit, checkpoints_the_steps_done_when_the_data_service_dies) {
  const auto dir = hds::test::scratch_dir("fit-service-dies");
  const auto config = hds::test::tiny_config(dir, {"train.epochs=50"});
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  auto remote = hds::test::tiny_config(
      dir, {"train.epochs=50", "data.service_socket=" + service.socket(),
            "data.service_job_id=" + service.job(), "data.service_timeout_seconds=2"});
  std::ostringstream log;
  FitOptions options;
  options.log = &log;
  // After three steps the service is killed; the batches already in the ring still train.
  int64_t last_step = 0;
  OnEachStep on_each_step([&](const hds::trainer::StepReport& report) {
    last_step = report.global_step;
    if (report.global_step == 3) service.process().kill_and_reap();
  });
  options.observers = {&on_each_step};
  EXPECT_THROW(fit(remote, options), hds::transport::RingPeerError) << log.str();
  ASSERT_GE(last_step, 3);
  // The checkpoint holds every step done: resuming from it loses nothing (2 steps an epoch).
  const auto meta =
      hds::trainer::read_checkpoint_meta((fs::path(dir) / "checkpoints" / "latest").string());
  EXPECT_EQ(meta.global_step(), last_step) << log.str();
  EXPECT_EQ(meta.completed_epochs(), last_step / 2);
  EXPECT_EQ(meta.step_in_epoch(), last_step % 2);
  EXPECT_NE(log.str().find("data source failed"), std::string::npos) << log.str();
}

TEST(Fit, through_the_data_service_trains_exactly_as_in_process) {
  const auto local_dir = hds::test::scratch_dir("fit-local");
  const auto remote_dir = hds::test::scratch_dir("fit-remote");
  const auto local_config = hds::test::tiny_config(local_dir, {"train.epochs=3"});
  ServiceProcess service(local_config, remote_dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  const auto remote_config = hds::test::tiny_config(
      remote_dir, {"train.epochs=3", "data.service_socket=" + service.socket(),
                   "data.service_job_id=" + service.job()});

  std::ostringstream log;
  FitOptions options;
  options.log = &log;
  const FitResult local = fit(local_config, options);
  const FitResult remote = fit(remote_config, options);
  ASSERT_TRUE(local.finished && remote.finished);
  EXPECT_EQ(remote.global_step, local.global_step);
  EXPECT_EQ(remote.last_loss, local.last_loss);  // bit for bit: the same patches, in order
  // Validated on the same films, normalised alike: rank 0 took the service's mean and std and
  // decoded the validation films alone.
  EXPECT_EQ(remote.best_dice.dice(), local.best_dice.dice());
  EXPECT_NE(log.str().find("training batches from the data service at " + service.socket()),
            std::string::npos)
      << log.str();
  const auto latest = [](const std::string& dir) {
    return hds::trainer::read_checkpoint_meta((fs::path(dir) / "checkpoints" / "latest").string());
  };
  EXPECT_EQ(latest(remote_dir).data_mean(), latest(local_dir).data_mean());
  EXPECT_EQ(latest(remote_dir).data_std(), latest(local_dir).data_std());
}

}  // namespace
}  // namespace hds::trainer

// Checkpoints: round trip, corruption detection, atomicity when the disk is full, pruning.
#include "hds/trainer/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "hds/test/configs.h"
#include "hds/test/files.h"

namespace hds::trainer {
namespace {
namespace fs = std::filesystem;

struct ModelAndOptimizer {
  HdsNet model;
  torch::optim::SGD optimizer;
  explicit ModelAndOptimizer(const hds::config::Config& config)
      : model(config.model()),
        optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)) {}
  // One SGD step so that momentum buffers and BN statistics exist.
  void step() {
    const auto out = model->forward(torch::randn({2, 1, 128, 128}));
    optimizer.zero_grad();
    (out.seg.back().mean() + out.cls.back().mean()).backward();
    optimizer.step();
  }
};

hds::checkpoint::CheckpointMeta meta_at(int64_t step) {
  hds::checkpoint::CheckpointMeta meta;
  meta.set_global_step(step);
  meta.set_completed_epochs(static_cast<int>(step));
  meta.set_cpu_rng_state(cpu_rng_state());
  return meta;
}

void expect_same_state(torch::nn::Module& a, torch::nn::Module& b) {
  const auto sa = ordered_state_dict(a);
  const auto sb = ordered_state_dict(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

TEST(CheckpointStore, round_trip_restores_model_optimizer_and_metadata) {
  const auto dir = hds::test::scratch_dir("checkpoint-roundtrip");
  const auto config = hds::test::tiny_config(dir);
  ModelAndOptimizer run(config);
  run.step();
  CheckpointStore store(dir);
  const auto path = store.save(run.model, run.optimizer, meta_at(7));
  EXPECT_EQ(fs::canonical(store.latest()), fs::canonical(path));

  ModelAndOptimizer restored(config);
  const auto meta = load_checkpoint(dir, restored.model, &restored.optimizer);  // via `latest`
  EXPECT_EQ(meta.global_step(), 7);
  expect_same_state(*run.model, *restored.model);
  // Momentum buffers came back: one more identical step gives identical parameters.
  torch::manual_seed(11);
  run.step();
  torch::manual_seed(11);
  restored.step();
  expect_same_state(*run.model, *restored.model);
}

TEST(CheckpointStore, a_corrupted_file_is_refused_with_its_name) {
  const auto dir = hds::test::scratch_dir("checkpoint-corrupt");
  const auto config = hds::test::tiny_config(dir);
  ModelAndOptimizer run(config);
  CheckpointStore store(dir);
  const auto path = store.save(run.model, run.optimizer, meta_at(1));
  {
    std::fstream file(fs::path(path) / "model.pt", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x5a');
  }
  try {
    load_checkpoint(path, run.model, nullptr);
    FAIL() << "corrupt checkpoint loaded";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("model.pt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
  }
}

TEST(CheckpointStore, a_full_disk_leaves_the_previous_checkpoint_intact) {
  const auto dir = hds::test::scratch_dir("checkpoint-full");
  const auto config = hds::test::tiny_config(dir);
  ModelAndOptimizer run(config);
  CheckpointStore store(dir);
  const auto first = store.save(run.model, run.optimizer, meta_at(1));
  run.step();

  // RLIMIT_FSIZE makes writes past 4 KiB fail with EFBIG, as a full disk fails them with ENOSPC.
  rlimit old_limit{};
  getrlimit(RLIMIT_FSIZE, &old_limit);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string error;
  try {
    store.save(run.model, run.optimizer, meta_at(2));
  } catch (const CheckpointError& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(error.empty()) << "save succeeded despite the file size limit";
  EXPECT_NE(error.find("step-000000002"), std::string::npos) << error;
  EXPECT_NE(error.find("intact"), std::string::npos) << error;
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".incomplete"), std::string::npos)
        << "leftover " << entry.path();
  }
  EXPECT_FALSE(fs::exists(fs::path(dir) / "step-000000002"));
  EXPECT_EQ(fs::canonical(store.latest()), fs::canonical(first));
  ModelAndOptimizer restored(config);
  EXPECT_EQ(load_checkpoint(dir, restored.model, &restored.optimizer).global_step(), 1);
}

TEST(CheckpointStore, prune_keeps_the_newest_and_every_linked_checkpoint) {
  const auto dir = hds::test::scratch_dir("checkpoint-prune");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  CheckpointStore store(dir);
  std::vector<std::string> paths;
  for (int step = 1; step <= 5; ++step)
    paths.push_back(store.save(run.model, run.optimizer, meta_at(step)));
  store.link("best-dice", paths[1]);
  store.prune(2);
  EXPECT_FALSE(fs::exists(paths[0]));
  EXPECT_TRUE(fs::exists(paths[1]));  // linked
  EXPECT_FALSE(fs::exists(paths[2]));
  EXPECT_TRUE(fs::exists(paths[3]));
  EXPECT_TRUE(fs::exists(paths[4]));
  EXPECT_EQ(fs::canonical(fs::path(dir) / "best-dice"), fs::canonical(paths[1]));
}

TEST(CheckpointStore, a_directory_without_a_checkpoint_is_named_in_the_error) {
  const auto dir = hds::test::scratch_dir("checkpoint-none");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  try {
    load_checkpoint(dir, run.model, nullptr);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hds::trainer

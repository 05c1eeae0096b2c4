// Checkpoints: round trip, corruption detection, atomicity when the disk is full, pruning.
#include "hds/trainer/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>

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

// Replaces the first `from` in `path` by `to` (a user's edit of the metadata).
void edit_text_file(const fs::path& path, const std::string& from, const std::string& to) {
  std::string text = hds::test::read_text(path.string());
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << path;
  text.replace(at, from.size(), to);
  std::ofstream(path, std::ios::trunc) << text;
}

void corrupt_byte(const fs::path& file) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekp(100);
  stream.put('\x5a');
}

std::string checkpoint_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no CheckpointError";
  return "";
}

TEST(CheckpointStore, an_edited_metadata_field_is_refused_like_a_corrupt_weight) {
  const auto dir = hds::test::scratch_dir("checkpoint-meta-edit");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  CheckpointStore store(dir);
  auto meta = meta_at(3);
  meta.set_data_mean(0.3125);
  const auto path = store.save(run.model, run.optimizer, meta);
  EXPECT_DOUBLE_EQ(read_checkpoint_meta(path).data_mean(), 0.3125);
  edit_text_file(fs::path(path) / kCheckpointMetaFile, "data_mean: 0.3125", "data_mean: 0.3135");
  const std::string error = checkpoint_error([&] { load_checkpoint(path, run.model, nullptr); });
  EXPECT_NE(error.find(path + "/checkpoint.pbtxt: corrupt"), std::string::npos) << error;
  EXPECT_NE(error.find("metadata_crc32"), std::string::npos) << error;
}

TEST(CheckpointStore, a_format_1_checkpoint_without_the_metadata_crc_is_still_read) {
  const auto dir = hds::test::scratch_dir("checkpoint-format-1");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  CheckpointStore store(dir);
  const auto path = store.save(run.model, run.optimizer, meta_at(4));
  const fs::path file = fs::path(path) / kCheckpointMetaFile;
  edit_text_file(file, "format_version: 2", "format_version: 1");
  const std::string text = hds::test::read_text(file.string());
  const size_t crc = text.find("metadata_crc32:");
  ASSERT_NE(crc, std::string::npos);
  std::ofstream(file, std::ios::trunc)
      << text.substr(0, crc) + text.substr(text.find('\n', crc) + 1);
  EXPECT_EQ(load_checkpoint(path, run.model, nullptr).global_step(), 4);
}

TEST(AutoResume, a_run_without_checkpoints_starts_afresh) {
  const auto dir = hds::test::scratch_dir("auto-fresh");
  EXPECT_EQ(choose_auto_resume(dir + "/checkpoints").checkpoint, "");
  fs::create_directories(dir + "/checkpoints");
  const AutoResume choice = choose_auto_resume(dir + "/checkpoints");
  EXPECT_EQ(choice.checkpoint, "");
  EXPECT_EQ(choice.note, "");
}

TEST(AutoResume, latest_when_intact_else_the_newest_intact_checkpoint_with_the_reason) {
  const auto dir = hds::test::scratch_dir("auto-fallback");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  CheckpointStore store(dir);
  const auto first = store.save(run.model, run.optimizer, meta_at(1));
  const auto second = store.save(run.model, run.optimizer, meta_at(2));
  const auto third = store.save(run.model, run.optimizer, meta_at(3));
  EXPECT_EQ(fs::canonical(choose_auto_resume(dir).checkpoint), fs::canonical(third));
  EXPECT_EQ(choose_auto_resume(dir).note, "");

  // The newest is corrupt: the one before, and the note names the corrupt file.
  corrupt_byte(fs::path(third) / "model.pt");
  AutoResume choice = choose_auto_resume(dir);
  EXPECT_EQ(choice.checkpoint, second);
  EXPECT_NE(choice.note.find(third + "/model.pt: corrupt"), std::string::npos) << choice.note;
  EXPECT_NE(choice.note.find("resuming from " + second + ", the newest intact checkpoint"),
            std::string::npos)
      << choice.note;

  // `latest` points at a folder that was removed (after being told it is corrupt).
  fs::remove_all(third);
  choice = choose_auto_resume(dir);
  EXPECT_EQ(choice.checkpoint, second);
  EXPECT_NE(choice.note.find("points at " + third + ", which is missing"), std::string::npos)
      << choice.note;

  // No `latest` at all, but step checkpoints: still no fresh start.
  fs::remove(fs::path(dir) / "latest");
  EXPECT_EQ(choose_auto_resume(dir).checkpoint, second);

  // None intact: an error naming each, never a fresh start over them.
  corrupt_byte(fs::path(second) / "model.pt");
  corrupt_byte(fs::path(first) / "optimizer.pt");
  const std::string error = checkpoint_error([&] { choose_auto_resume(dir); });
  EXPECT_NE(error.find(second + "/model.pt: corrupt"), std::string::npos) << error;
  EXPECT_NE(error.find(first + "/optimizer.pt: corrupt"), std::string::npos) << error;
  EXPECT_NE(error.find("no intact checkpoint is left"), std::string::npos) << error;
  EXPECT_TRUE(fs::exists(first) && fs::exists(second));
}

TEST(CheckpointStore, a_new_checkpoint_moves_a_corrupt_one_of_its_step_aside) {
  const auto dir = hds::test::scratch_dir("checkpoint-corrupt-aside");
  ModelAndOptimizer run(hds::test::tiny_config(dir));
  CheckpointStore store(dir);
  const auto path = store.save(run.model, run.optimizer, meta_at(5));
  corrupt_byte(fs::path(path) / "model.pt");
  EXPECT_EQ(store.save(run.model, run.optimizer, meta_at(5)), path);
  EXPECT_EQ(load_checkpoint(path, run.model, nullptr).global_step(), 5);
  const auto kept_aside = [&] {
    std::vector<fs::path> kept;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("corrupt-step-000000005-", 0) == 0) kept.push_back(entry.path());
    }
    return kept;
  };
  ASSERT_EQ(kept_aside().size(), 1u);
  EXPECT_FALSE(checkpoint_error([&] { read_checkpoint_meta(kept_aside()[0].string()); }).empty());
  store.save(run.model, run.optimizer, meta_at(6));
  store.prune(1);
  EXPECT_EQ(kept_aside().size(), 1u) << "prune leaves it to the user";
}

}  // namespace
}  // namespace hds::trainer

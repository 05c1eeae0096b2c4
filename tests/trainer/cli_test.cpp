// hds-trainer as a user runs it: describe's counts, configuration errors, a short fit, and a
// SIGTERM that stops training with a checkpoint and exit code 75.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "hds/config/config.h"
#include "hds/test/configs.h"
#include "hds/test/files.h"

extern char** environ;

namespace {
namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& arguments) {
  const std::string command = std::string(HDS_TRAINER_BINARY) + " " + arguments + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string write_config(const std::string& dir, const hds::config::Config& config) {
  const std::string path = dir + "/job.pbtxt";
  std::ofstream(path) << hds::config::to_text(config);
  return path;
}

TEST(TrainerCli, describe_prints_the_paper_models_counts_and_map_sizes) {
  const auto result = run("describe");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("\nparameters: 7278248\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("\ntrunk_conv3x3: 45\n"), std::string::npos);
  EXPECT_NE(result.output.find("\ncls_map_train: 4x3\n"), std::string::npos);
  EXPECT_NE(result.output.find("\ncls_map_test: 8x4\n"), std::string::npos);
}

TEST(TrainerCli, a_bad_config_value_exits_2_naming_file_line_and_field) {
  const auto dir = hds::test::scratch_dir("cli-bad-config");
  const std::string path = dir + "/bad.pbtxt";
  std::ofstream(path) << "train {\n  epochs: 3\n}\ndata {\n  patch_rows: 500\n}\n";
  const auto result = run("describe --config " + path);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find(path + ":5"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("data.patch_rows"), std::string::npos) << result.output;
  const auto unknown = run("describe --set train.epoch=3");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("train.epoch"), std::string::npos) << unknown.output;
}

TEST(TrainerCli, fit_trains_validates_and_checkpoints) {
  const auto dir = hds::test::scratch_dir("cli-fit");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  const auto result = run("fit --config " + config + " --set train.epochs=2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("epoch 2/2 step 2/2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("validation epoch 2: dice"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("eta"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt"));
  EXPECT_TRUE(fs::exists(dir + "/run/summary.json"));
}

TEST(TrainerCli, sigterm_stops_at_the_next_step_with_a_checkpoint_and_exit_75) {
  const auto dir = hds::test::scratch_dir("cli-sigterm");
  const auto config = write_config(
      dir, hds::test::tiny_config(dir + "/run", {"train.epochs=500", "train.log_every_steps=1"}));
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string binary = HDS_TRAINER_BINARY, fit = "fit", flag = "--config";
  std::string config_path = config;
  char* argv[] = {binary.data(), fit.data(), flag.data(), config_path.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  // Wait until training runs, then ask it to stop as Slurm's preemption would.
  std::string output;
  char buffer[256];
  while (output.find("epoch 1/500 step 1/2") == std::string::npos) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    ASSERT_GT(n, 0) << "trainer ended before its first step: " << output;
    output.append(buffer, static_cast<size_t>(n));
  }
  kill(pid, SIGTERM);
  while (true) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 75) << output;
  EXPECT_NE(output.find("on request"), std::string::npos) << output;
  ASSERT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt")) << output;
  // The checkpoint resumes: one more step, then the step limit stops it again.
  const std::string latest = fs::read_symlink(dir + "/run/checkpoints/latest").filename().string();
  const long stopped_at = std::stol(latest.substr(latest.find('-') + 1));
  const auto resumed = run("fit --config " + config + " --resume " + dir + "/run/checkpoints" +
                           " --stop-at-step " + std::to_string(stopped_at + 1));
  EXPECT_EQ(resumed.exit_code, 75) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
}

}  // namespace

// `mpirun -np 2 hds-trainer fit` as a user runs it: two ranks share every step, only rank 0
// reports and checkpoints, and a stop signal to one rank stops both at the same step with one
// checkpoint that a `--resume auto` run continues from.
#include <dirent.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "hds/config/config.h"
#include "hds/test/child_process.h"
#include "hds/test/configs.h"
#include "hds/test/files.h"

namespace {
namespace fs = std::filesystem;
using hds::test::ChildProcess;

std::string write_config(const std::string& dir, const std::vector<std::string>& extra) {
  const std::string path = dir + "/job.pbtxt";
  std::ofstream(path) << hds::config::to_text(hds::test::tiny_config(dir + "/run", extra));
  return path;
}

// mpirun with two trainer ranks; `marker` tags their environment so the test can find them.
std::unique_ptr<ChildProcess> start_job(const std::vector<std::string>& fit_arguments,
                                        const std::string& marker) {
  setenv("HDS_TEST_MARKER", marker.c_str(), 1);
  // Open MPI refuses root unless told (CI runs as root); waiting ranks yield their core.
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 1);
  std::vector<std::string> arguments{"--oversubscribe",  "-np", "2", "-x", "HDS_TEST_MARKER",
                                     HDS_TRAINER_BINARY, "fit"};
  arguments.insert(arguments.end(), fit_arguments.begin(), fit_arguments.end());
  return std::make_unique<ChildProcess>(HDS_MPIRUN, arguments);
}

// The pid of the trainer of `rank` whose environment holds HDS_TEST_MARKER=marker, or -1.
pid_t find_rank(const std::string& marker, int rank) {
  const std::string want_marker = "HDS_TEST_MARKER=" + marker;
  const std::string want_rank = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream file(entry.path() / "environ", std::ios::binary);
    std::string environment((std::istreambuf_iterator<char>(file)), {});
    bool marker_found = false, rank_found = false;
    for (size_t start = 0; start < environment.size();) {
      const size_t end = environment.find('\0', start);
      const std::string variable = environment.substr(start, end - start);
      marker_found |= variable == want_marker;
      rank_found |= variable == want_rank;
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (marker_found && rank_found) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

int count_checkpoints(const std::string& run) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(run + "/checkpoints")) {
    count += entry.path().filename().string().rfind("step-", 0) == 0 && !entry.is_symlink();
  }
  return count;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

TEST(DistributedCli, two_ranks_share_each_step_and_rank_0_alone_reports_and_checkpoints) {
  const auto dir = hds::test::scratch_dir("dist-fit");
  // 8 training films, 4 patches per rank: one step of 8 patches an epoch (alone: two steps).
  const auto config = write_config(dir, {"train.epochs=4", "train.log_every_steps=1"});
  auto job = start_job({"--config", config}, dir);
  const auto status = job->wait_exit(240);
  ASSERT_TRUE(status.has_value()) << job->output();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << job->output();
  const std::string& out = job->output();
  EXPECT_NE(out.find("distributed: 2 ranks, mpi gradient sync"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 4/4 step 1/1"), std::string::npos) << out;
  EXPECT_EQ(out.find("step 1/2"), std::string::npos) << "the ranks did not share the epoch:\n"
                                                     << out;
  EXPECT_EQ(occurrences(out, "summary: 4 epochs, 4 steps"), 1u) << out;
  std::ifstream summary(dir + "/run/summary.json");
  const std::string text((std::istreambuf_iterator<char>(summary)), {});
  EXPECT_NE(text.find("\"finished\": true"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt"));
}

TEST(DistributedCli, a_stop_signal_to_one_rank_stops_both_at_one_step_with_one_checkpoint) {
  const auto dir = hds::test::scratch_dir("dist-stop");
  // 16 films, 2 patches per rank: 4 steps an epoch, far too many epochs to finish.
  const auto config =
      write_config(dir, {"data.phantom={train_count: 16 val_count: 3 test_count: 0 seed: 7}",
                         "train.epochs=500", "train.batch_size=2", "train.log_every_steps=1"});
  auto job = start_job({"--config", config}, dir);
  ASSERT_TRUE(job->wait_for_output("epoch 1/500 step 2/4", 180)) << job->output();
  const pid_t rank1 = find_rank(dir, 1);
  ASSERT_GT(rank1, 0) << "rank 1 not found";
  kill(rank1, SIGUSR1);  // as Slurm's preemption warning would
  const auto status = job->wait_exit(120);
  ASSERT_TRUE(status.has_value()) << job->output();
  ASSERT_TRUE(WIFEXITED(*status)) << job->output();
  EXPECT_EQ(WEXITSTATUS(*status), 75) << job->output();
  const std::string& out = job->output();
  EXPECT_EQ(occurrences(out, "on request"), 1u) << out;
  EXPECT_EQ(count_checkpoints(dir + "/run"), 1) << out;
  std::smatch stopped;
  const std::regex stop_line("stopped at epoch (\\d+), step (\\d+) on request");
  ASSERT_TRUE(std::regex_search(out, stopped, stop_line)) << out;

  // The requeued job resumes from that checkpoint and runs a few more steps.
  const auto latest = fs::read_symlink(dir + "/run/checkpoints/latest").filename().string();
  const long stopped_at = std::stol(latest.substr(latest.find('-') + 1));
  auto resumed = start_job(
      {"--config", config, "--resume", "auto", "--stop-at-step", std::to_string(stopped_at + 2)},
      dir + "-resumed");
  const auto resumed_status = resumed->wait_exit(180);
  ASSERT_TRUE(resumed_status.has_value()) << resumed->output();
  EXPECT_TRUE(WIFEXITED(*resumed_status) && WEXITSTATUS(*resumed_status) == 75)
      << resumed->output();
  EXPECT_NE(resumed->output().find("resumed from " +
                                   fs::canonical(dir + "/run/checkpoints").string() + "/" + latest),
            std::string::npos)
      << resumed->output();
  EXPECT_NE(resumed->output().find("global step " + std::to_string(stopped_at)), std::string::npos)
      << resumed->output();
}

}  // namespace

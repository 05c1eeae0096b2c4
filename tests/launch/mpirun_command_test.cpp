// The mpirun command line of `hds-launch local`: the flags Open MPI needs here, and what the
// trainers are told.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "hds/launch/local_launch.h"

namespace hds::launch {
namespace {

LocalLaunchOptions two_ranks() {
  LocalLaunchOptions options;
  options.config_path = "/jobs/job.pbtxt";
  options.overrides = {"train.epochs=3"};
  options.ranks = 2;
  options.mpirun = "/usr/bin/mpirun";
  options.trainer = "/opt/hds/hds-trainer";
  return options;
}

bool has(const std::vector<std::string>& command, const std::string& word) {
  return std::find(command.begin(), command.end(), word) != command.end();
}

// `words` stand in this order, next to each other, somewhere in `command`.
bool has_run(const std::vector<std::string>& command, const std::vector<std::string>& words) {
  return std::search(command.begin(), command.end(), words.begin(), words.end()) != command.end();
}

TEST(MpirunCommand, runs_the_trainers_against_the_service) {
  const auto command = mpirun_command(two_ranks(), "/tmp/x/data.sock", "job-1", 2, "");
  EXPECT_EQ(command.front(), "/usr/bin/mpirun");
  EXPECT_TRUE(
      has_run(command, {"-np", "2", "/opt/hds/hds-trainer", "fit", "--config", "/jobs/job.pbtxt",
                        "--set", "train.epochs=3", "--set", "data.service_socket=/tmp/x/data.sock",
                        "--set", "data.service_job_id=job-1"}))
      << ::testing::PrintToString(command);
  EXPECT_FALSE(has(command, "--resume"));
  // Waiting ranks yield the core; ranks are not pinned to one core each.
  EXPECT_TRUE(has_run(command, {"--mca", "mpi_yield_when_idle", "1"}));
  EXPECT_TRUE(has_run(command, {"--bind-to", "none"}));
}

TEST(MpirunCommand, allows_root_only_as_root) {
  const auto command = mpirun_command(two_ranks(), "/s", "j", 2, "");
  EXPECT_EQ(has(command, "--allow-run-as-root"), geteuid() == 0);
}

TEST(MpirunCommand, oversubscribes_only_beyond_the_cores) {
  EXPECT_FALSE(has(mpirun_command(two_ranks(), "/s", "j", 2, ""), "--oversubscribe"));
  EXPECT_TRUE(has(mpirun_command(two_ranks(), "/s", "j", 1, ""), "--oversubscribe"));
  EXPECT_GE(physical_cores(), 1);
}

TEST(MpirunCommand, passes_resume_segments_and_extra_arguments) {
  LocalLaunchOptions options = two_ranks();
  options.resume = "auto";
  options.mpirun_arguments = {"--report-bindings"};
  const auto command = mpirun_command(options, "/s", "j", 2, "/dev/shm/hds-launch-abc");
  EXPECT_TRUE(has_run(command, {"--resume", "auto"}));
  EXPECT_EQ(command.back(), "auto");
  EXPECT_TRUE(
      has_run(command, {"--mca", "btl_vader_backing_directory", "/dev/shm/hds-launch-abc"}));
  EXPECT_TRUE(has_run(command, {"--mca", "orte_tmpdir_base", "/dev/shm/hds-launch-abc"}));
  EXPECT_FALSE(has_run(command, {"--set", "data.service_reconnect_seconds=320"}))
      << "no restarts, no waiting for a restarted service";
  options.max_restarts = 2;
  EXPECT_TRUE(has_run(mpirun_command(options, "/s", "j", 2, ""),
                      {"--set", "data.service_reconnect_seconds=320"}))
      << "--ready-timeout 300 + 20 s";
  EXPECT_TRUE(has_run(command, {"--report-bindings", "-np", "2"}))
      << "extra arguments go to mpirun";
}

TEST(Restarts, only_a_lost_rank_or_a_killed_process_is_worth_a_new_start) {
  using namespace hds::common;
  EXPECT_TRUE(is_restartable(kExitRankLost));
  EXPECT_TRUE(is_restartable(kExitSignalBase + 9));   // a rank SIGKILLed (mpirun's 137)
  EXPECT_TRUE(is_restartable(kExitSignalBase + 15));  // or terminated
  for (int code : {kExitFinished, kExitError, kExitUsage, kExitNonFiniteLoss, kExitStopped}) {
    EXPECT_FALSE(is_restartable(code)) << code;
  }
}

}  // namespace
}  // namespace hds::launch

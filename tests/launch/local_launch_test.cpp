// `hds-launch local` end to end: a real data service, mpirun and two hds-trainer ranks on the tiny
// job; stops, kills and failures, and what each leaves behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "hds/common/exit_codes.h"
#include "hds/launch/job_lock.h"
#include "hds/test/child_process.h"
#include "hds/test/prometheus.h"
#include "launch_test_support.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

// Bounds on waits, generous for a loaded 2-core machine; none is a timing assertion.
constexpr double kJobSeconds = 180;
constexpr double kStopSeconds = 90;
// A progress line of the running job ("epoch 3/300 step 1/2 ...").
const std::string kProgress = R"(epoch \d+/\d+ step \d+/\d+)";

int count_checkpoints(const std::string& dir) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir + "/run/checkpoints")) {
    if (entry.path().filename().string().rfind("step-", 0) == 0) ++count;
  }
  return count;
}

class LocalLaunch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = testing::why_jobs_cannot_run()) GTEST_SKIP() << *why;
    shared_memory_ = testing::shared_memory_entries();
  }
  // Whatever a test did to its job, the job's shared memory (rings, Open MPI's segments) is gone.
  void TearDown() override {
    if (shared_memory_) testing::expect_no_new_shared_memory(*shared_memory_);
  }

  // hds-launch local --np 2 on the job in `dir`, with job id `job_id`.
  Command launch(const std::string& dir, const std::string& job_id,
                 const std::vector<std::string>& extra = {},
                 const std::string& log = "launch.log") {
    return Command(testing::two_rank_local_job(dir + "/job.pbtxt", job_id, extra), dir + "/" + log);
  }

  // Starts the tiny job "local-<name>" of `epochs` epochs and waits until it has trained a step.
  void start_training(const std::string& name, int epochs,
                      const std::vector<std::string>& extra = {}, int checkpoint_every = 1000) {
    dir_ = scratch_dir("local-" + name);
    write_tiny_job(dir_, epochs, checkpoint_every);
    job_ = "launch-test-" + name + "-" + std::to_string(getpid());
    run_.emplace(launch(dir_, job_, extra));
    ASSERT_TRUE(run_->wait_for_output(kProgress, kJobSeconds)) << run_->output();
  }

  std::string dir_;
  std::string job_;
  std::optional<Command> run_;
  std::optional<std::set<std::string>> shared_memory_;
};

TEST_F(LocalLaunch, two_ranks_finish_and_leave_nothing_behind) {
  const std::string dir = scratch_dir("local-finish");
  write_tiny_job(dir, 2);
  const std::string job = "launch-test-finish-" + std::to_string(getpid());
  Command run = launch(dir, job);
  ASSERT_EQ(run.wait_exit(kJobSeconds), 0) << run.output();
  const std::string output = run.output();

  const nlohmann::json summary = read_summary(dir);
  EXPECT_TRUE(summary["finished"].get<bool>()) << summary.dump();
  EXPECT_EQ(summary["global_step"].get<int>(), 4) << "2 epochs of 8 films, 2 ranks x batch 2";
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt"));
  // Both ranks were fed by the service, and rank 0 logged the run.
  EXPECT_NE(read_text(dir + "/run/data-service.log").find("rank 1 of 2"), std::string::npos);
  EXPECT_NE(read_text(dir + "/run/trainer.log").find("epoch 2/2 step 2/2"), std::string::npos)
      << read_text(dir + "/run/trainer.log");
  // The closing report says where everything is.
  EXPECT_NE(output.find("hds-launch: job " + job + " finished"), std::string::npos) << output;
  EXPECT_NE(output.find("checkpoints: " + dir + "/run/checkpoints (latest: step-"),
            std::string::npos);
  EXPECT_NE(output.find("summary:     " + dir + "/run/summary.json"), std::string::npos);
  EXPECT_NE(output.find("trainer log: " + dir + "/run/trainer.log"), std::string::npos);
  EXPECT_NE(output.find("service log: " + dir + "/run/data-service.log"), std::string::npos);
  EXPECT_NE(output.find("metrics:     off (monitoring.metrics_port = 0)"), std::string::npos)
      << output;

  std::smatch socket;
  const std::regex ready(R"(data service ready: socket (\S+))");
  ASSERT_TRUE(std::regex_search(output, socket, ready)) << output;
  EXPECT_FALSE(fs::exists(socket[1].str()));
  EXPECT_FALSE(fs::exists(fs::path(socket[1].str()).parent_path())) << "the private socket folder";
  testing::expect_nothing_left(job);

  // A second job fine-tunes from the first one's weights, given by a relative path.
  const std::string tuned = scratch_dir("local-finish-tuned");
  write_tiny_job(tuned, 1);
  const fs::path source = fs::relative(dir + "/run/checkpoints");
  Command tune = launch(tuned, job + "-tuned", {"--init-from", source.string()});
  ASSERT_EQ(tune.wait_exit(kJobSeconds), 0) << tune.output();
  const std::string tuned_log = read_text(tuned + "/run/trainer.log");
  EXPECT_NE(
      tuned_log.find("initialised from " + fs::canonical(dir + "/run/checkpoints/latest").string() +
                     " (its epoch 2, global step 4): a new schedule from epoch 1"),
      std::string::npos)
      << tuned_log;
  testing::expect_nothing_left(job + "-tuned");
}

// Started from a terminal, the job shows rank 0's progress as one bar redrawn in place there,
// while trainer.log keeps whole lines only.
TEST_F(LocalLaunch, on_a_terminal_the_bar_goes_to_the_terminal_and_whole_lines_to_the_log) {
  const std::string dir = scratch_dir("local-terminal");
  write_tiny_job(dir, 3);
  const std::string job = "launch-test-terminal-" + std::to_string(getpid());
  setenv("TERM", "xterm", 1);
  hds::test::ChildProcess run(
      testing::launch_binary(),
      {"local", "--config", dir + "/job.pbtxt", "--np", "2", "--job-id", job},
      hds::test::ChildOutput::terminal);
  const auto status = run.wait_exit(kJobSeconds);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << run.output();
  EXPECT_NE(run.output().find("\r\033[Kepoch 3/3 [####################] 100% step 2/2"),
            std::string::npos)
      << run.output();
  const std::string log = read_text(dir + "/run/trainer.log");
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  EXPECT_EQ(log.find("\033["), std::string::npos) << log;
  EXPECT_NE(log.find("\nsummary: 3 epochs, 6 steps"), std::string::npos) << log;
  testing::expect_nothing_left(job);
}

// --set values that turn metrics on (free ports for 2 ranks and the service) with the targets
// file under `dir`/targets.
std::vector<std::string> metrics_with_targets(const std::string& dir) {
  const int ports = hds::test::free_ports(3);
  return {"--set", "monitoring.metrics_port=" + std::to_string(ports), "--set",
          "monitoring.targets_dir=" + dir + "/targets"};
}

std::string match_in(const std::string& text, const std::string& pattern) {
  std::smatch match;
  return std::regex_search(text, match, std::regex(pattern)) ? match[1].str() : "";
}

TEST_F(LocalLaunch, a_second_launch_with_a_live_jobs_id_is_refused_and_the_live_job_keeps_all) {
  const std::string dir = scratch_dir("local-same-id");
  ASSERT_NO_FATAL_FAILURE(start_training("same-id", 300, metrics_with_targets(dir)));
  const std::string targets = dir + "/targets/" + job_ + ".json";
  const std::string ring = "/dev/shm/hds-" + job_ + "-r0";
  ASSERT_TRUE(fs::exists(targets)) << run_->output();
  ASSERT_TRUE(fs::exists(ring));

  Command second = launch(dir_, job_, {}, "second.log");
  ASSERT_EQ(second.wait_exit(30), 1) << second.output();
  EXPECT_NE(second.output().find("job id " + job_ + " is in use by a running hds-launch (pid " +
                                 std::to_string(run_->pid())),
            std::string::npos)
      << second.output();
  EXPECT_EQ(second.output().find("removing"), std::string::npos) << second.output();
  EXPECT_TRUE(fs::exists(targets));
  EXPECT_TRUE(fs::exists(ring));

  // The live job still trains, and stops as usual.
  const size_t seen = run_->output().size();
  EXPECT_TRUE(eventually([&] { return run_->output().size() > seen; }, 30)) << run_->output();
  run_->signal(SIGTERM);
  ASSERT_EQ(run_->wait_exit(kStopSeconds), 75) << run_->output();
  EXPECT_FALSE(fs::exists(targets));
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, what_a_killed_launcher_leaves_is_removed_by_clean) {
  const std::string dir = scratch_dir("local-killed-launcher");
  ASSERT_NO_FATAL_FAILURE(start_training("killed-launcher", 300, metrics_with_targets(dir)));
  const std::string output = run_->output();
  const std::string targets = match_in(output, R"(Prometheus targets: (\S+))");
  const std::string socket = match_in(output, R"(data service ready: socket (\S+))");
  const std::string segments =
      match_in(read_text(dir_ + "/run/trainer.log"), R"(btl_vader_backing_directory (\S+))");
  ASSERT_FALSE(targets.empty() || socket.empty() || segments.empty()) << output;
  const std::vector<std::string> leftovers = {targets, fs::path(socket).parent_path().string(),
                                              segments, job_lock_path(job_)};

  run_->signal(SIGKILL);
  ASSERT_TRUE(run_->wait_exit(30).has_value());
  testing::expect_nothing_left(job_);  // the service and mpirun end with their parent
  for (const std::string& path : leftovers) EXPECT_TRUE(fs::exists(path)) << path;

  Command clean({launch_binary(), "clean"}, dir + "/clean.log");
  ASSERT_EQ(clean.wait_exit(30), 0) << clean.output();
  for (const std::string& path : leftovers) {
    EXPECT_FALSE(fs::exists(path)) << path;
    EXPECT_NE(clean.output().find("removed " + path), std::string::npos) << path << " not named:\n"
                                                                         << clean.output();
  }
  EXPECT_NE(clean.output().find("abandoned job " + job_ + " (launcher pid " +
                                std::to_string(run_->pid())),
            std::string::npos)
      << clean.output();
}

TEST_F(LocalLaunch, sigterm_stops_with_one_checkpoint_and_auto_resume_finishes) {
  ASSERT_NO_FATAL_FAILURE(start_training("sigterm", 300));
  run_->signal(SIGTERM);
  ASSERT_EQ(run_->wait_exit(kStopSeconds), 75) << run_->output();
  const std::string output = run_->output();
  EXPECT_NE(output.find("asking the trainers to stop with a checkpoint at the next step"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("stopped with a checkpoint (exit 75)"), std::string::npos) << output;
  EXPECT_NE(output.find("resume with: hds-launch local"), std::string::npos) << output;
  EXPECT_EQ(count_checkpoints(dir_), 1) << "the stop writes one checkpoint (periodic ones are off)";
  const nlohmann::json stopped = read_summary(dir_);
  EXPECT_FALSE(stopped["finished"].get<bool>()) << stopped.dump();
  testing::expect_nothing_left(job_);

  // The resumed run continues from that checkpoint and finishes the epoch it stopped in.
  const int epochs = stopped["completed_epochs"].get<int>() + 1;
  Command resumed =
      launch(dir_, job_, {"--resume", "auto", "--set", "train.epochs=" + std::to_string(epochs)},
             "resume.log");
  ASSERT_EQ(resumed.wait_exit(kJobSeconds), 0) << resumed.output();
  EXPECT_NE(resumed.output().find("resumed from " + dir_ + "/run/checkpoints/step-"),
            std::string::npos)
      << resumed.output();
  const nlohmann::json finished = read_summary(dir_);
  EXPECT_TRUE(finished["finished"].get<bool>()) << finished.dump();
  EXPECT_EQ(finished["global_step"].get<int>(), epochs * 2);
  EXPECT_GT(finished["global_step"].get<int>(), stopped["global_step"].get<int>());
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, second_signal_stops_hung_ranks_at_once) {
  ASSERT_NO_FATAL_FAILURE(start_training("hard-stop", 300));
  // Hung ranks: frozen, they cannot act on the graceful stop, so only the second signal ends
  // them (and two signals sent at once would merge into one).
  const std::vector<pid_t> ranks = testing::trainer_ranks_of(run_->pid());
  ASSERT_EQ(ranks.size(), 2u) << run_->output();
  for (pid_t rank : ranks) ::kill(rank, SIGSTOP);
  run_->signal(SIGINT);
  ASSERT_TRUE(run_->wait_for_output("asking the trainers to stop", kStopSeconds)) << run_->output();
  run_->signal(SIGINT);
  ASSERT_EQ(run_->wait_exit(kStopSeconds), 128 + SIGINT) << run_->output();
  EXPECT_NE(run_->output().find("again: stopping the trainers at once"), std::string::npos)
      << run_->output();
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, a_stopped_rank_is_named_by_the_watchdog_and_the_job_ends_within_its_limit) {
  constexpr double kTimeout = 3;
  ASSERT_NO_FATAL_FAILURE(start_training(
      "watchdog", 300,
      {"--set", "distributed.collective_timeout_seconds=" + std::to_string(kTimeout)}));
  ASSERT_TRUE(run_->wait_for_output(R"(epoch 2/300 step)", kJobSeconds)) << run_->output();
  const pid_t stopped = testing::trainer_rank(run_->pid(), 1);
  ASSERT_GT(stopped, 0) << run_->output();
  const auto stop_time = std::chrono::steady_clock::now();
  ::kill(stopped, SIGSTOP);  // alive but frozen: what a hang looks like to its peers

  const std::optional<int> code = run_->wait_exit(kTimeout + 10);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_time).count();
  ASSERT_TRUE(code.has_value()) << "the job still runs " << kTimeout + 10
                                << " s after a rank froze:\n"
                                << run_->output();
  EXPECT_EQ(*code, hds::common::kExitRankLost) << run_->output();
  EXPECT_GE(took, kTimeout);
  const std::string output = run_->output();
  EXPECT_NE(output.find("rank 0/2: watchdog: collective \""), std::string::npos) << output;
  EXPECT_NE(output.find("over distributed.collective_timeout_seconds = 3"), std::string::npos)
      << output;
  EXPECT_NE(output.find("rank 1 (pid " + std::to_string(stopped) + " on "), std::string::npos)
      << output;
  EXPECT_NE(output.find("silent for"), std::string::npos) << output;
  // The table stays: the last thing each rank was seen doing.
  EXPECT_TRUE(fs::exists(dir_ + "/run/progress/rank-1.json"));
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, an_overdue_stop_checkpoints_the_last_step_and_resuming_matches_a_clean_run) {
  constexpr int kEpochs = 60;
  const std::string clean_dir = scratch_dir("local-overdue-clean");
  write_tiny_job(clean_dir, kEpochs);
  Command clean = launch(clean_dir, "launch-test-overdue-clean-" + std::to_string(getpid()));
  ASSERT_EQ(clean.wait_exit(kJobSeconds), 0) << clean.output();

  // Rank 1 frozen (and the watchdog's limit far away): the graceful stop cannot finish, so the
  // launcher escalates after 2 s and rank 0 checkpoints from its watchdog's thread.
  ASSERT_NO_FATAL_FAILURE(start_training(
      "overdue", kEpochs,
      {"--set", "distributed.collective_timeout_seconds=600", "--set",
       "distributed.stop_grace_seconds=2", "--set", "distributed.stop_checkpoint_seconds=20"}));
  const pid_t frozen = testing::trainer_rank(run_->pid(), 1);
  ASSERT_GT(frozen, 0) << run_->output();
  ::kill(frozen, SIGSTOP);
  const auto stop_time = std::chrono::steady_clock::now();
  run_->signal(SIGTERM);
  ASSERT_EQ(run_->wait_exit(2 + 20 + 10), hds::common::kExitStopped) << run_->output();
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_time).count();
  EXPECT_GE(took, 2);
  const std::string output = run_->output();
  EXPECT_NE(output.find("have not stopped 2 s after the request (distributed.stop_grace_seconds)"),
            std::string::npos)
      << output;
  EXPECT_TRUE(
      std::regex_search(output, std::regex("rank 0/2: " + testing::overdue_stop_checkpointed())))
      << output;
  testing::expect_nothing_left(job_);
  const nlohmann::json stopped_at =
      nlohmann::json::parse(read_text(dir_ + "/run/checkpoints/latest/../../progress/rank-0.json"));
  EXPECT_LT(stopped_at["global_step"].get<int>(), kEpochs * 2) << "stopped before the end";

  Command resumed = launch(dir_, job_, {"--resume", "auto"}, "resume.log");
  ASSERT_EQ(resumed.wait_exit(kJobSeconds), 0) << resumed.output();
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == latest_weights(clean_dir))
      << "the resumed run's final weights differ from the uninterrupted run's";
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch,
       max_restarts_survives_a_killed_rank_and_restarts_a_killed_service_in_place_bit_exactly) {
  constexpr int kEpochs = 60;
  const std::string clean_dir = scratch_dir("local-restarts-clean");
  write_tiny_job(clean_dir, kEpochs, /*checkpoint_every=*/1);
  Command clean = launch(clean_dir, "launch-test-restarts-clean-" + std::to_string(getpid()));
  ASSERT_EQ(clean.wait_exit(kJobSeconds), 0) << clean.output();

  ASSERT_NO_FATAL_FAILURE(start_training(
      "restarts", kEpochs, {"--max-restarts", "2", "--set", "data.service_timeout_seconds=3"},
      /*checkpoint_every=*/1));
  ASSERT_TRUE(run_->wait_for_output(R"(epoch 5/60 step)", kJobSeconds)) << run_->output();
  const pid_t rank = testing::trainer_rank(run_->pid(), 1);
  ASSERT_GT(rank, 0) << run_->output();
  ::kill(rank, SIGKILL);
  ASSERT_TRUE(run_->wait_for_output(R"(restart 1/2: training again .* steps redone)", kJobSeconds))
      << run_->output();
  pid_t service = -1;
  for (pid_t pid : descendants_of(run_->pid())) {
    if (command_name(pid) == "hds-data-servic") service = pid;  // comm holds 15 characters
  }
  ASSERT_GT(service, 0) << run_->output();
  const pid_t rank_before = testing::trainer_rank(run_->pid(), 1);
  ::kill(service, SIGKILL);
  // The service alone is started again; the ranks wait for it and go on where they were.
  ASSERT_TRUE(
      run_->wait_for_output(R"(restart 2/2: training again .* 0 steps redone)", kJobSeconds))
      << run_->output();
  EXPECT_EQ(testing::trainer_rank(run_->pid(), 1), rank_before) << "the ranks were not restarted";

  ASSERT_EQ(run_->wait_exit(kJobSeconds), 0) << run_->output();
  const std::string output = run_->output();
  EXPECT_NE(
      output.find(
          "restart 1/2 after the trainers exited with status 137: a rank was killed by signal 9"),
      std::string::npos)
      << output;
  EXPECT_NE(output.find("restart 2/2: the data service (pid " + std::to_string(service) +
                        ") was killed by signal 9 (Killed) while the trainers ran: restarting in "
                        "place"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("reconnected to the data service"), std::string::npos) << output;
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == latest_weights(clean_dir))
      << "the final weights differ from the uninterrupted run's";
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, max_restarts_does_not_restart_a_run_that_would_fail_again) {
  dir_ = scratch_dir("local-no-restart");
  write_tiny_job(dir_, 5);
  job_ = "launch-test-no-restart-" + std::to_string(getpid());
  Command run =
      launch(dir_, job_, {"--max-restarts", "3", "--set", "optimizer.learning_rate=1e30"});
  EXPECT_EQ(run.wait_exit(kJobSeconds), hds::common::kExitNonFiniteLoss) << run.output();
  EXPECT_EQ(run.output().find("hds-launch: restart"), std::string::npos) << run.output();
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, killed_rank_ends_the_job_and_the_last_checkpoint_stays_intact) {
  ASSERT_NO_FATAL_FAILURE(start_training("kill-rank", 300, {}, /*checkpoint_every=*/1));
  ASSERT_TRUE(run_->wait_for_output(R"(epoch 2/300 step)", kJobSeconds)) << run_->output();
  ASSERT_TRUE(fs::exists(dir_ + "/run/checkpoints/latest")) << "a checkpoint after epoch 1";
  const std::vector<pid_t> ranks = testing::trainer_ranks_of(run_->pid());
  ASSERT_EQ(ranks.size(), 2u) << run_->output();
  ::kill(ranks.back(), SIGKILL);

  const std::optional<int> code = run_->wait_exit(kStopSeconds);
  ASSERT_TRUE(code.has_value()) << "hds-launch still runs after a rank died:\n" << run_->output();
  EXPECT_NE(*code, 0);
  EXPECT_NE(*code, 75);
  EXPECT_NE(run_->output().find("the trainers failed: mpirun exited with status 137: a rank was "
                                "killed by signal 9"),
            std::string::npos)
      << run_->output();
  testing::expect_nothing_left(job_);

  // The checkpoint `latest` names is whole: export reads it and checks every file's CRC-32.
  const std::string latest = fs::canonical(dir_ + "/run/checkpoints/latest").string();
  Command read_back(
      {HDS_TRAINER_BINARY_PATH, "export", "--checkpoint", latest, "--out", dir_ + "/model.pt"},
      dir_ + "/export.log");
  EXPECT_EQ(read_back.wait_exit(kJobSeconds), 0) << read_back.output();
}

TEST_F(LocalLaunch, ranks_of_a_killed_mpirun_are_not_left_behind) {
  ASSERT_NO_FATAL_FAILURE(start_training("kill-mpirun", 300));
  pid_t mpirun = -1;
  for (pid_t pid : descendants_of(run_->pid())) {
    if (command_name(pid) == "mpirun") mpirun = pid;
  }
  ASSERT_GT(mpirun, 0) << run_->output();
  ::kill(mpirun, SIGKILL);  // its ranks lose their parent and would train on alone

  const std::optional<int> code = run_->wait_exit(kStopSeconds);
  ASSERT_TRUE(code.has_value()) << "hds-launch still runs after mpirun died:\n" << run_->output();
  EXPECT_NE(*code, 0);
  EXPECT_NE(run_->output().find("killed trainer processes that outlived mpirun"), std::string::npos)
      << run_->output();
  testing::expect_nothing_left(job_);
}

TEST_F(LocalLaunch, dead_data_service_ends_the_job_with_a_clear_message) {
  ASSERT_NO_FATAL_FAILURE(
      start_training("kill-service", 300, {"--set", "data.service_timeout_seconds=3"}));
  pid_t service = -1;
  for (pid_t pid : descendants_of(run_->pid())) {
    if (command_name(pid) == "hds-data-servic") service = pid;  // comm holds 15 characters
  }
  ASSERT_GT(service, 0) << run_->output();
  ::kill(service, SIGKILL);

  const std::optional<int> code = run_->wait_exit(kStopSeconds);
  ASSERT_TRUE(code.has_value()) << "hds-launch still runs after the service died:\n"
                                << run_->output();
  EXPECT_NE(*code, 0);
  EXPECT_NE(run_->output().find("the data service (pid " + std::to_string(service) +
                                ") was killed by signal 9"),
            std::string::npos)
      << run_->output();
  testing::expect_nothing_left(job_);
}

// As a user, mpirun runs without --allow-run-as-root (CI runs as root: this drops to nobody).
TEST_F(LocalLaunch, runs_as_a_user) {
  if (geteuid() != 0) GTEST_SKIP() << "not root: every other test already runs as a user";
  const std::string setpriv = "/usr/bin/setpriv";  // util-linux
  if (!fs::exists(setpriv)) GTEST_SKIP() << setpriv << " is missing";
  const std::string dir = scratch_dir("local-user");
  write_tiny_job(dir, 1);
  constexpr uid_t kNobody = 65534;
  ASSERT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chown((dir + "/job.pbtxt").c_str(), kNobody, kNobody), 0);
  const std::vector<std::string> as_nobody = {setpriv, "--reuid=65534", "--regid=65534",
                                              "--clear-groups"};
  auto command = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), as_nobody.begin(), as_nobody.end());
    return argv;
  };
  Command reach(command({"/usr/bin/test", "-x", testing::launch_binary()}), dir + "/reach.log");
  if (reach.wait_exit(kStopSeconds) != 0) GTEST_SKIP() << "user nobody cannot reach the build tree";

  const std::string job = "launch-test-user-" + std::to_string(getpid());
  Command run(command({testing::launch_binary(), "local", "--config", dir + "/job.pbtxt", "--np",
                       "2", "--job-id", job}),
              dir + "/launch.log");
  ASSERT_EQ(run.wait_exit(kJobSeconds), 0) << run.output();
  EXPECT_TRUE(read_summary(dir)["finished"].get<bool>());
  const std::string trainer_log = read_text(dir + "/run/trainer.log");
  EXPECT_NE(trainer_log.find("mpirun"), std::string::npos) << trainer_log;
  EXPECT_EQ(trainer_log.find("--allow-run-as-root"), std::string::npos) << trainer_log;
  struct stat status {};
  ASSERT_EQ(::stat((dir + "/run/checkpoints/latest/model.pt").c_str(), &status), 0);
  EXPECT_EQ(status.st_uid, kNobody);
  testing::expect_nothing_left(job);
}

// Needs no trainer: the service fails while loading its dataset.
TEST(LocalLaunchStartup, service_that_cannot_start_is_reported_with_its_log) {
  const std::string dir = scratch_dir("local-service-fails");
  write_tiny_job(dir, 1);
  const std::string job = "launch-test-nostart-" + std::to_string(getpid());
  Command run(
      {testing::launch_binary(), "local", "--config", dir + "/job.pbtxt", "--np", "2", "--job-id",
       job, "--set", "data.source=folder", "--set", "data.root=" + dir + "/no-such-dataset",
       "--trainer", "/bin/true", "--mpirun", "/bin/true"},
      dir + "/launch.log");
  ASSERT_EQ(run.wait_exit(kJobSeconds), 1) << run.output();
  const std::string output = run.output();
  EXPECT_TRUE(
      std::regex_search(output, std::regex(R"(the data service \(pid \d+\) exited with status)")))
      << output;
  EXPECT_NE(output.find("before it was ready; its log " + dir + "/run/data-service.log ends:"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("no-such-dataset"), std::string::npos) << "the log's own words: " << output;
  testing::expect_nothing_left(job);
}

}  // namespace
}  // namespace hds::launch

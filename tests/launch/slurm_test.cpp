// `hds-launch sbatch --submit` on a real single-node Slurm (slurmctld + slurmd on 127.0.0.1,
// configured as docs/design.md §8 records): a 2-rank CPU job is preempted with
// `scancel --signal=USR1 --batch`, requeues itself, resumes from its checkpoint and finishes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hds/test/prometheus.h"
#include "launch_test_support.h"
#include "slurm_cluster.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

// `hds-launch sbatch` of `config` as one node of 2 CPU ranks with `sets` (--set options).
std::vector<std::string> two_ranks_on_one_node(const std::string& dir, const std::string& config,
                                               const std::vector<std::string>& sets,
                                               const std::vector<std::string>& options = {}) {
  return testing::sbatch_cpu_job(dir, config, 1, 2, sets, options);
}

// The trainer process of `rank` in run `run` of Slurm job `job`, or -1.
pid_t slurm_rank(const std::string& job, const std::string& run, int rank) {
  for (const std::string& process : testing::processes_mentioning("slurm-" + job + "-" + run)) {
    const pid_t pid = std::stoi(process);
    if (command_name(pid) == "hds-trainer" && testing::mpi_rank_of(pid) == rank) return pid;
  }
  return -1;
}

// One test's one-node cluster in a scratch folder; skipped where Slurm or the trainer is missing.
class Slurm : public testing::SlurmJobTest {
 protected:
  void SetUp() override {
    if (const std::string why = SlurmCluster::unavailable_reason(); !why.empty())
      GTEST_SKIP() << why;
    if (!testing::trainer_built())
      GTEST_SKIP() << "hds-trainer is not built (HDS_BUILD_TRAINER=OFF)";
  }

  // The cluster, started in the scratch folder `name`, with the node idle.
  void start_cluster(const std::string& name) {
    dir_ = scratch_dir(name);
    shared_memory_ = testing::shared_memory_entries();
    cluster_.emplace(dir_ + "/slurm");
    std::string why;
    ASSERT_TRUE(cluster_->wait_until_idle(why)) << why;
  }

  // Nothing of the job's two runs is left: processes, rings, socket folders, shared memory.
  void expect_both_runs_left_nothing(const std::string& job) {
    for (const std::string run : {"0", "1"}) {
      testing::expect_nothing_left("slurm-" + job + "-" + run);
      EXPECT_FALSE(fs::exists("/tmp/hds-" + job + "-" + run)) << "socket folder of run " << run;
    }
    testing::expect_no_new_shared_memory(shared_memory_);
  }

  std::set<std::string> shared_memory_;
};

TEST_F(Slurm, preempted_job_requeues_resumes_from_its_checkpoint_and_finishes) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("slurm"));
  const std::string& dir = dir_;

  const std::string config = testing::write_tiny_job(dir, 10);
  // Metrics on, so that each run lists its processes for Prometheus.
  const int ports = hds::test::free_ports(3);
  ASSERT_GT(ports, 0);
  const std::string targets = dir + "/targets";
  const std::string job = submit(two_ranks_on_one_node(
      dir, config,
      {"monitoring.metrics_port=" + std::to_string(ports), "monitoring.data_service_port_offset=2",
       "monitoring.targets_dir=" + targets}));
  ASSERT_FALSE(job.empty());
  const std::string output = output_of(job);

  // Preempt the first run once it trains: USR1 to the batch shell, as --signal=B:USR1 would.
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch \d+/10 step \d+/2)"));
  // The running run's targets: its data service and both ranks, labelled with the Slurm job.
  const std::string targets_file = targets + "/slurm-" + job + "-0.json";
  ASSERT_TRUE(fs::exists(targets_file)) << read_text(output);
  const nlohmann::json groups = nlohmann::json::parse(read_text(targets_file));
  ASSERT_EQ(groups.size(), 3u) << groups.dump();
  EXPECT_EQ(groups[0]["labels"]["role"], "data_service");
  EXPECT_EQ(groups[2]["labels"]["rank"], "1");
  EXPECT_EQ(groups[2]["targets"][0], "127.0.0.1:" + std::to_string(ports + 1));
  for (const auto& group : groups) EXPECT_EQ(group["labels"]["slurm_job_id"], job);
  cluster_->client({"scancel", "--signal=USR1", "--batch", job});

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output);
  EXPECT_NE(log.find("run 0 of job " + job), std::string::npos) << log;
  EXPECT_NE(log.find("SIGUSR1: asking the trainers to stop with a checkpoint"), std::string::npos)
      << log;
  EXPECT_NE(log.find("requeueing job " + job), std::string::npos) << log;
  // The second run saw SLURM_RESTART_COUNT=1, resumed from the checkpoint and finished.
  EXPECT_NE(log.find("run 1 of job " + job), std::string::npos) << log;
  EXPECT_EQ(cluster_->job_field(job, "Restarts"), "1");
  EXPECT_NE(log.find("resumed from " + dir + "/run/checkpoints/step-"), std::string::npos) << log;
  EXPECT_NE(log.find("finished; summary"), std::string::npos) << log;
  const nlohmann::json summary = nlohmann::json::parse(read_text(dir + "/run/summary.json"));
  EXPECT_TRUE(summary["finished"].get<bool>()) << summary.dump();
  EXPECT_EQ(summary["global_step"].get<int>(), 20);

  // Nothing of either run is left: processes, rings, socket folders, targets files.
  EXPECT_TRUE(fs::is_empty(targets)) << "a run's targets file outlived it";
  expect_both_runs_left_nothing(job);
}

TEST_F(Slurm, an_overdue_stop_escalates_rank_0_checkpoints_and_the_requeued_run_finishes) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("slurm-overdue"));
  const std::string& dir = dir_;
  constexpr int kEpochs = 40;
  const std::string config = testing::write_tiny_job(dir, kEpochs);
  const std::string job = submit(two_ranks_on_one_node(
      dir, config,
      {"distributed.collective_timeout_seconds=600", "distributed.stop_grace_seconds=2",
       "distributed.stop_checkpoint_seconds=20"}));
  ASSERT_FALSE(job.empty());
  const std::string output = output_of(job);
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch \d+/\d+ step)"));

  // Rank 1 of the first run frozen: the ranks cannot agree on a step, so the stop escalates.
  const pid_t frozen = slurm_rank(job, "0", 1);
  ASSERT_GT(frozen, 0) << ::testing::PrintToString(
      testing::processes_mentioning("slurm-" + job + "-0"));
  ::kill(frozen, SIGSTOP);
  cluster_->client({"scancel", "--signal=USR1", "--batch", job});

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output);
  EXPECT_NE(log.find("have not stopped 2 s after the request (distributed.stop_grace_seconds): "
                     "asking rank 0 for a checkpoint"),
            std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(log, std::regex(testing::overdue_stop_checkpointed()))) << log;
  EXPECT_NE(log.find("requeueing job " + job), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + dir + "/run/checkpoints/step-"), std::string::npos) << log;
  const nlohmann::json summary = nlohmann::json::parse(read_text(dir + "/run/summary.json"));
  EXPECT_TRUE(summary["finished"].get<bool>()) << summary.dump();
  EXPECT_EQ(summary["global_step"].get<int>(), kEpochs * 2);
  expect_both_runs_left_nothing(job);
}

TEST_F(Slurm, with_max_restarts_a_killed_rank_requeues_and_a_killed_service_restarts_in_place) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("slurm-restart"));
  const std::string& dir = dir_;
  constexpr int kEpochs = 40;
  const std::string config = testing::write_tiny_job(dir, kEpochs, /*checkpoint_every=*/1);
  const std::string job = submit(two_ranks_on_one_node(dir, config, {}, {"--max-restarts", "2"}));
  ASSERT_FALSE(job.empty());
  const std::string output = output_of(job);
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch 3/\d+ step)"));
  const pid_t rank = slurm_rank(job, "0", 1);
  ASSERT_GT(rank, 0);
  ::kill(rank, SIGKILL);

  // The requeued run trains; then its data service dies and is started again beside its ranks.
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(resumed from .*\n(.*\n)*epoch \d+/\d+ step)"));
  pid_t service = -1;
  for (const std::string& process : testing::processes_mentioning("slurm-" + job + "-1")) {
    const pid_t pid = std::stoi(process);
    if (command_name(pid) == "hds-data-servic") service = pid;  // comm holds 15 characters
  }
  ASSERT_GT(service, 0) << read_text(output);
  const pid_t rank_before = slurm_rank(job, "1", 1);
  ::kill(service, SIGKILL);
  ASSERT_NO_FATAL_FAILURE(wait_for_output(
      job, R"(restart 2/2: the data service on localhost is ready again(.*\n)*epoch)"));
  EXPECT_EQ(slurm_rank(job, "1", 1), rank_before) << "the ranks were not restarted";

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output);
  EXPECT_NE(log.find("restart 1/2 after the trainers exited with status"), std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(
      log,
      std::regex(R"(resumed from .*: the previous launch had done \d+ steps, \d+ are redone)")))
      << log;
  EXPECT_NE(log.find("resumed from " + dir + "/run/checkpoints/step-"), std::string::npos) << log;
  EXPECT_NE(log.find("restart 2/2: the data service on localhost ended (its srun "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("reconnected to the data service"), std::string::npos) << log;
  const nlohmann::json summary = nlohmann::json::parse(read_text(dir + "/run/summary.json"));
  EXPECT_EQ(summary["global_step"].get<int>(), kEpochs * 2);
  expect_both_runs_left_nothing(job);
}

}  // namespace
}  // namespace hds::launch

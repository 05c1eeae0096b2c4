// Jobs across two nodes (VirtualNodes: network, UTS and mount namespaces on this machine, each
// with its host name, address, /tmp and /dev/shm; the scratch folder shared as a cluster's file
// system): `hds-launch sbatch --nodes 2` on a real Slurm of two slurmd, and faults on the second
// node. Every job is the tiny one of launch_test_support.h; its final weights are compared with
// the same job's on one node with two ranks.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>

#include "hds/test/prometheus.h"
#include "launch_test_support.h"
#include "slurm_cluster.h"
#include "virtual_nodes.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

constexpr int kNodes = 2;

// The build tree: the programs the nodes run.
std::string build_tree() { return fs::path(launch_binary()).parent_path().parent_path().string(); }

// The final weights of the tiny job of `epochs` epochs trained by two ranks on this machine
// (hds-launch local), once per epoch count.
const std::string& one_node_weights(int epochs) {
  static std::map<int, std::string> weights;
  if (weights.count(epochs) == 0) {
    const std::string dir = scratch_dir("multinode-reference-" + std::to_string(epochs));
    write_tiny_job(dir, epochs);
    Command run(
        two_rank_local_job(dir + "/job.pbtxt", "multinode-reference-" + std::to_string(getpid())),
        dir + "/launch.log");
    EXPECT_EQ(run.wait_exit(kSlurmJobSeconds), 0) << run.output();
    weights[epochs] = latest_weights(dir);
  }
  return weights[epochs];
}

class MultiNode : public testing::SlurmJobTest {
 protected:
  void SetUp() override {
    for (const std::string& why :
         {VirtualNodes::unavailable_reason(), SlurmCluster::unavailable_reason()}) {
      if (!why.empty()) GTEST_SKIP() << why;
    }
    if (!trainer_built()) GTEST_SKIP() << "hds-trainer is not built (HDS_BUILD_TRAINER=OFF)";
  }

  // Two nodes, in the scratch folder `name`.
  void start_nodes(const std::string& name) {
    dir_ = scratch_dir(name);
    // The build's programs and the tree's scripts, at their paths (even under /tmp).
    nodes_.emplace(dir_, kNodes, std::vector<std::string>{HDS_SOURCE_DIR, build_tree()});
  }

  // Two nodes and a Slurm cluster on them, in the scratch folder `name`, idle.
  void start_cluster(const std::string& name) {
    start_nodes(name);
    cluster_.emplace(dir_ + "/slurm", *nodes_);
    std::string why;
    ASSERT_TRUE(cluster_->wait_until_idle(why)) << why;
  }

  void TearDown() override {
    cluster_.reset();
    nodes_.reset();
  }

  // `hds-launch sbatch --nodes 2 --ranks-per-node 1 --submit` of the job in dir_, with `sets`
  // (--set) and `options`; the Slurm job id.
  std::string submit_two_nodes(const std::vector<std::string>& sets,
                               const std::vector<std::string>& options = {}) {
    return submit(sbatch_cpu_job(dir_, dir_ + "/job.pbtxt", kNodes, 1, sets, options));
  }

  // The process of program `command` (as /proc's comm names it) of run `run` of `job` on
  // `node`, serving or being rank `rank` (-1: any), or -1.
  pid_t process_of(const std::string& job, const std::string& run, const std::string& command,
                   int node, int rank = -1) {
    for (const std::string& process : processes_mentioning("slurm-" + job + "-" + run)) {
      const pid_t pid = std::stoi(process);
      if (command_name(pid) != command ||
          environment_of(pid, "SLURMD_NODENAME") != VirtualNodes::name(node))
        continue;
      if (rank < 0 || mpi_rank_of(pid) == rank) return pid;
    }
    return -1;
  }

  // Nothing of Slurm job `job` is left: no process of its `runs` runs, and each node's
  // /dev/shm and /tmp hold nothing but the shared folders.
  void expect_nothing_left(const std::string& job, int runs) {
    for (int run = 0; run < runs; ++run) {
      testing::expect_nothing_left("slurm-" + job + "-" + std::to_string(run));
    }
    expect_nodes_clean();
  }

  void expect_nodes_clean() {
    for (int node = 0; node < kNodes; ++node) {
      std::vector<std::string> left;
      for (const std::string folder : {"/dev/shm", "/tmp"}) {
        for (const auto& entry : fs::directory_iterator(nodes_->path_on(node, folder))) {
          const std::string name = entry.path().filename().string();
          if (folder == "/tmp" && name.rfind("hds-test-", 0) == 0) continue;  // shared
          if (folder == "/tmp" && fs::path(build_tree()).string().find("/tmp/" + name) == 0) {
            continue;
          }
          left.push_back(folder + "/" + name);
        }
      }
      EXPECT_TRUE(left.empty()) << VirtualNodes::name(node) << " keeps "
                                << ::testing::PrintToString(left);
    }
  }

  std::optional<VirtualNodes> nodes_;
};

TEST_F(MultiNode, a_two_node_job_runs_a_service_per_node_and_ends_with_the_one_node_weights) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("multinode-job"));
  constexpr int kEpochs = 12;
  write_tiny_job(dir_, kEpochs);
  const std::string targets = dir_ + "/targets";
  const std::string job =
      submit_two_nodes({"monitoring.metrics_port=9400", "monitoring.metrics_address=0.0.0.0",
                        "monitoring.targets_dir=" + targets});
  ASSERT_FALSE(job.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch \d+/\d+ step)"));

  // While it trains: a rank and a data service on each node, each rank's ring in its own
  // node's /dev/shm, and the targets naming both nodes.
  for (int node = 0; node < kNodes; ++node) {
    EXPECT_GT(process_of(job, "0", "hds-trainer", node, node), 0) << VirtualNodes::name(node);
    EXPECT_GT(process_of(job, "0", "hds-data-servic", node), 0) << VirtualNodes::name(node);
    const std::string ring = "hds-slurm-" + job + "-0-r" + std::to_string(node);
    EXPECT_TRUE(fs::exists(nodes_->path_on(node, "/dev/shm/" + ring)))
        << ring << " on " << VirtualNodes::name(node);
    EXPECT_FALSE(fs::exists(nodes_->path_on(1 - node, "/dev/shm/" + ring)))
        << ring << " on " << VirtualNodes::name(1 - node);
  }
  const nlohmann::json groups =
      nlohmann::json::parse(read_text(targets + "/slurm-" + job + "-0.json"));
  std::set<std::string> addresses;
  for (const auto& group : groups) addresses.insert(group["targets"][0].get<std::string>());
  EXPECT_EQ(addresses,
            (std::set<std::string>{"node1:9400", "node1:9500", "node2:9400", "node2:9500"}))
      << groups.dump();

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output_of(job));
  for (int node = 0; node < kNodes; ++node) {
    const std::string name = VirtualNodes::name(node);
    EXPECT_NE(log.find("data service ready: socket /tmp/hds-" + job + "-0/data.sock on " + name),
              std::string::npos)
        << log;
    // Each service served its own node's rank only.
    const std::string service_log =
        read_text(dir_ + "/run/data-service-" + job + "-0-" + name + ".log");
    EXPECT_NE(service_log.find("rank " + std::to_string(node) + " of 2"), std::string::npos)
        << service_log;
    EXPECT_EQ(service_log.find("rank " + std::to_string(1 - node) + " of 2"), std::string::npos)
        << service_log;
    const nlohmann::json progress = nlohmann::json::parse(
        read_text(dir_ + "/run/progress/rank-" + std::to_string(node) + ".json"));
    EXPECT_EQ(progress["host"], name);
  }
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == one_node_weights(kEpochs))
      << "two nodes trained other weights than one node";
  EXPECT_FALSE(fs::exists(targets + "/slurm-" + job + "-0.json"));
  expect_nothing_left(job, 1);
}

TEST_F(MultiNode, a_killed_rank_on_node2_requeues_the_job_which_ends_with_the_one_node_weights) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("multinode-killed-rank"));
  constexpr int kEpochs = 30;
  write_tiny_job(dir_, kEpochs, /*checkpoint_every=*/1);
  const std::string job = submit_two_nodes({}, {"--max-restarts", "1"});
  ASSERT_FALSE(job.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch 3/\d+ step)"));
  const pid_t rank = process_of(job, "0", "hds-trainer", 1, 1);
  ASSERT_GT(rank, 0) << read_text(output_of(job));
  ::kill(rank, SIGKILL);

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output_of(job));
  EXPECT_NE(log.find("restart 1/1 after the trainers exited with status"), std::string::npos)
      << log;
  EXPECT_NE(log.find("run 1 of job " + job + " on node[1-2]"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + dir_ + "/run/checkpoints/step-"), std::string::npos) << log;
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == one_node_weights(kEpochs))
      << "the requeued two-node job trained other weights than one node";
  expect_nothing_left(job, 2);
}

TEST_F(MultiNode, a_stopped_rank_on_node2_is_named_with_its_host_by_the_watchdog_on_node1) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("multinode-stopped-rank"));
  constexpr int kTimeout = 3;  // distributed.collective_timeout_seconds
  write_tiny_job(dir_, 300);
  const std::string job =
      submit_two_nodes({"distributed.collective_timeout_seconds=" + std::to_string(kTimeout)});
  ASSERT_FALSE(job.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch 2/\d+ step)"));
  const pid_t rank = process_of(job, "0", "hds-trainer", 1, 1);
  ASSERT_GT(rank, 0) << read_text(output_of(job));
  const auto stopped_at = std::chrono::steady_clock::now();
  ::kill(rank, SIGSTOP);

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "FAILED"));
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  EXPECT_GE(took, kTimeout);
  const std::string log = read_text(output_of(job));
  EXPECT_NE(log.find("rank 0/2: watchdog: collective \""), std::string::npos) << log;
  EXPECT_NE(log.find("rank 1 (pid " + std::to_string(rank) + " on node2)"), std::string::npos)
      << log;
  EXPECT_NE(log.find("silent for"), std::string::npos) << log;
  expect_nothing_left(job, 1);
}

TEST_F(MultiNode, node2s_killed_data_service_is_restarted_on_node2_alone) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("multinode-killed-service"));
  constexpr int kEpochs = 30;
  write_tiny_job(dir_, kEpochs);
  const std::string job =
      submit_two_nodes({"data.service_timeout_seconds=3"}, {"--max-restarts", "1"});
  ASSERT_FALSE(job.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch 3/\d+ step)"));
  const pid_t service_1 = process_of(job, "0", "hds-data-servic", 0);
  const pid_t service_2 = process_of(job, "0", "hds-data-servic", 1);
  ASSERT_GT(service_1, 0) << read_text(output_of(job));
  ASSERT_GT(service_2, 0) << read_text(output_of(job));
  const pid_t rank_2 = process_of(job, "0", "hds-trainer", 1, 1);
  ::kill(service_2, SIGKILL);

  ASSERT_NO_FATAL_FAILURE(
      wait_for_output(job, R"(restart 1/1: the data service on node2 is ready again)"));
  const pid_t new_service_2 = process_of(job, "0", "hds-data-servic", 1);
  EXPECT_GT(new_service_2, 0);
  EXPECT_NE(new_service_2, service_2);
  EXPECT_EQ(process_of(job, "0", "hds-data-servic", 0), service_1) << "node1's was restarted";
  EXPECT_EQ(process_of(job, "0", "hds-trainer", 1, 1), rank_2) << "the ranks were restarted";

  ASSERT_NO_FATAL_FAILURE(wait_until(job, "COMPLETED"));
  const std::string log = read_text(output_of(job));
  EXPECT_NE(log.find("restart 1/1: the data service on node2 "), std::string::npos) << log;
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == one_node_weights(kEpochs))
      << "the job whose service was restarted trained other weights than one node";
  expect_nothing_left(job, 1);
}

// deploy/mpirun/hds-mpirun-job.sh, the way to run across machines without Slurm: mpirun starts a
// data service on each host and the ranks, reaching node2 through its rsh agent.
TEST_F(MultiNode, plain_mpirun_runs_a_service_per_host_and_ends_with_the_one_node_weights) {
  ASSERT_NO_FATAL_FAILURE(start_nodes("multinode-mpirun"));
  constexpr int kEpochs = 12;
  write_tiny_job(dir_, kEpochs);
  const std::string job = "mpirun-test-" + std::to_string(getpid());
  const std::string script = std::string(HDS_SOURCE_DIR) + "/deploy/mpirun/hds-mpirun-job.sh";
  Command run(nodes_->on(0, {"/usr/bin/env",
                             "PATH=" + build_tree() + "/data_service:" +
                                 fs::path(HDS_TRAINER_BINARY_PATH).parent_path().string() +
                                 ":/usr/local/bin:/usr/bin:/bin",
                             "OMPI_MCA_plm_rsh_agent=" + nodes_->rsh_agent(), script, "--hosts",
                             "node1:1,node2:1", "--config", dir_ + "/job.pbtxt", "--job-id", job}),
              dir_ + "/mpirun.log");
  ASSERT_TRUE(run.wait_for_output(R"(epoch \d+/\d+ step)", kSlurmJobSeconds)) << run.output();
  for (int node = 0; node < kNodes; ++node) {
    const std::string ring = "hds-" + job + "-r" + std::to_string(node);
    EXPECT_TRUE(fs::exists(nodes_->path_on(node, "/dev/shm/" + ring)))
        << ring << " on " << VirtualNodes::name(node) << "\n"
        << run.output();
  }
  ASSERT_EQ(run.wait_exit(kSlurmJobSeconds), 0) << run.output();
  const std::string output = run.output();
  EXPECT_NE(output.find("data services ready on: "), std::string::npos) << output;
  for (int node = 0; node < kNodes; ++node) {
    const nlohmann::json progress = nlohmann::json::parse(
        read_text(dir_ + "/run/progress/rank-" + std::to_string(node) + ".json"));
    EXPECT_EQ(progress["host"], VirtualNodes::name(node));
  }
  EXPECT_EQ(read_summary(dir_)["global_step"].get<int>(), kEpochs * 2);
  EXPECT_TRUE(latest_weights(dir_) == one_node_weights(kEpochs))
      << "plain mpirun on two nodes trained other weights than one node";
  EXPECT_FALSE(fs::exists(dir_ + "/.hds-ready-" + job));
  testing::expect_nothing_left(job);
  expect_nodes_clean();
}

}  // namespace
}  // namespace hds::launch

// A real Slurm cluster for the tests, for the life of the object (configured as docs/design.md
// §8 records): slurmctld and one slurmd on this machine as "localhost" (127.0.0.1), or, over
// VirtualNodes, slurmctld on node1 and a slurmd on every node. SLURM_CONF points every client
// at it; the clients run on the first node.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "hds/launch/process.h"
#include "virtual_nodes.h"

namespace hds::launch::testing {

// How long a test waits for a whole job (its daemons starting, a requeue, training) at most.
constexpr double kSlurmJobSeconds = 240;

class SlurmCluster {
 public:
  // Why no cluster can run here ("" when it can): not root, or Slurm not installed.
  static std::string unavailable_reason();

  // One node, "localhost", with its files under `dir`.
  explicit SlurmCluster(const std::string& dir);
  // A node for each of `nodes` (which must outlive the cluster), with its files under `dir`.
  SlurmCluster(const std::string& dir, const VirtualNodes& nodes);
  ~SlurmCluster();
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  // Waits until every node is idle; false (with the daemons' logs in `why`) when they never get
  // there.
  bool wait_until_idle(std::string& why);
  // Runs a Slurm client (by name) where the clients run; its output.
  std::string client(const std::vector<std::string>& arguments);
  // `argv` as it runs where the clients run (on node1 of virtual nodes).
  std::vector<std::string> on_head_node(const std::vector<std::string>& argv) const;
  // A field of `scontrol show job JOB` ("JobState"), or "".
  std::string job_field(const std::string& job, const std::string& field);

 private:
  void start(const std::vector<std::string>& node_lines);

  std::string dir_;
  std::string conf_;
  const VirtualNodes* nodes_ = nullptr;  // none: this machine is the one node
  Process controller_;
  std::vector<Process> node_daemons_;
};

// `hds-launch sbatch ... --submit` of the job `config`: `nodes` CPU nodes of `ranks_per_node`
// ranks, a 10-minute limit, the script written to <dir>/job.sbatch, then `--set` for each of
// `sets`, then `options`.
std::vector<std::string> sbatch_cpu_job(const std::string& dir, const std::string& config,
                                        int nodes, int ranks_per_node,
                                        const std::vector<std::string>& sets,
                                        const std::vector<std::string>& options = {});

// What the tests of Slurm jobs share: the cluster, the test's scratch folder (the job's output
// under run/), submitting and waiting on the job's output and state.
class SlurmJobTest : public ::testing::Test {
 protected:
  // `hds-launch sbatch ... --submit` (argv, run on the head node, output in <dir>/submit.log);
  // the Slurm job id, or "" after a test failure that says why.
  std::string submit(const std::vector<std::string>& argv);
  // Slurm's output file of `job` (every run appends to it).
  std::string output_of(const std::string& job) const;
  // Waits until the job's output matches `pattern` (a regex).
  void wait_for_output(const std::string& job, const std::string& pattern);
  // Waits until `job` is in state `state` ("COMPLETED", "FAILED").
  void wait_until(const std::string& job, const std::string& state);

  std::string dir_;
  std::optional<SlurmCluster> cluster_;
};

}  // namespace hds::launch::testing

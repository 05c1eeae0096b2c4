// `hds-launch sbatch --submit` on a real single-node Slurm (slurmctld + slurmd on 127.0.0.1,
// configured as docs/design.md §8 records): a 2-rank CPU job is preempted with
// `scancel --signal=USR1 --batch`, requeues itself, resumes from its checkpoint and finishes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hds/test/prometheus.h"
#include "launch_test_support.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

constexpr double kSlurmSeconds = 30;  // daemons starting, stopping, a job starting
constexpr double kJobSeconds = 240;

// A cluster of one node, for the life of the object. SLURM_CONF points every client at it.
class SlurmCluster {
 public:
  // Why no cluster can run here, or "".
  static std::string unavailable_reason() {
    if (geteuid() != 0) return "needs root (slurmd starts job steps as their user)";
    for (const std::string program :
         {"slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "sinfo", "squeue"}) {
      if (path_of(program).empty())
        return program + " is not installed (apt-get install slurm-wlm)";
    }
    return "";
  }

  explicit SlurmCluster(const std::string& dir) : dir_(dir) {
    fs::create_directories(dir + "/state");
    fs::create_directories(dir + "/spool");
    conf_ = dir + "/slurm.conf";
    testing::write_text(conf_,
                        "ClusterName=ci\n"
                        "SlurmctldHost=localhost(127.0.0.1)\n"
                        "SlurmUser=root\n"
                        "SlurmdUser=root\n"
                        "AuthType=auth/none\n"
                        "CredType=cred/none\n"
                        "AuthInfo=cred_expire=10\n"
                        "MailProg=/bin/true\n"
                        // A step whose task died is ended 5 s later (not Slurm's 30).
                        "KillWait=5\n"
                        "MpiDefault=pmix\n"
                        "ProctrackType=proctrack/linuxproc\n"
                        "TaskPlugin=task/none\n"
                        "SelectType=select/cons_tres\n"
                        "SelectTypeParameters=CR_Core\n"
                        "SchedulerType=sched/backfill\n"
                        "SchedulerParameters=bf_interval=1,sched_interval=2\n"
                        "EnforcePartLimits=ALL\n"
                        "ReturnToService=2\n"
                        "StateSaveLocation=" +
                            dir +
                            "/state\n"
                            "SlurmdSpoolDir=" +
                            dir +
                            "/spool\n"
                            "SlurmctldPidFile=" +
                            dir +
                            "/slurmctld.pid\n"
                            "SlurmdPidFile=" +
                            dir +
                            "/slurmd.pid\n"
                            "SlurmctldLogFile=" +
                            dir +
                            "/slurmctld.log\n"
                            "SlurmdLogFile=" +
                            dir +
                            "/slurmd.log\n"
                            "SlurmctldPort=6817\n"
                            "SlurmdPort=6818\n"
                            "JobAcctGatherType=jobacct_gather/none\n"
                            "AccountingStorageType=accounting_storage/none\n"
                            "JobCompType=jobcomp/none\n"
                            "NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024\n"
                            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE "
                            "State=UP\n");
    setenv("SLURM_CONF", conf_.c_str(), 1);
    // In the foreground (-D), as our children: stopping them can then wait on them.
    SpawnOptions options;
    options.output_file = dir + "/daemons.log";
    controller_ = Process::spawn({path_of("slurmctld"), "-D", "-f", conf_}, options);
    node_daemon_ =
        Process::spawn({path_of("slurmd"), "-D", "-f", conf_, "-N", "localhost"}, options);
  }

  ~SlurmCluster() {
    client({"scontrol", "shutdown"});
    for (Process* daemon : {&node_daemon_, &controller_}) {
      if (!daemon->wait_for(kSlurmSeconds))
        ADD_FAILURE() << "a Slurm daemon ignored scontrol shutdown";
    }
    unsetenv("SLURM_CONF");
  }

  // Waits until the node is idle; false (with the daemons' log in `why`) when it never gets there.
  bool wait_until_idle(std::string& why) {
    std::string state;
    if (eventually(
            [&] {
              return (state = client({"sinfo", "-h", "-o", "%T"})) == "idle\n";
            },
            kSlurmSeconds)) {
      return true;
    }
    why = "sinfo says \"" + state + "\"; slurmctld.log:\n" + read_text(dir_ + "/slurmctld.log") +
          "\nslurmd.log:\n" + read_text(dir_ + "/slurmd.log") + "\n" +
          read_text(dir_ + "/daemons.log");
    return false;
  }

  // Runs a Slurm client (found on PATH); its output.
  std::string client(const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = arguments;
    argv[0] = path_of(argv[0]);
    Command run(argv, dir_ + "/client.log");
    run.wait_exit(kSlurmSeconds);
    return run.output();
  }

  std::string job_field(const std::string& job, const std::string& field) {
    const std::string text = client({"scontrol", "show", "job", job});
    std::smatch match;
    if (!std::regex_search(text, match, std::regex("\\b" + field + "=(\\S+)"))) return "";
    return match[1].str();
  }

 private:
  static std::string path_of(const std::string& program) {
    try {
      return find_system_program(program, "", "");
    } catch (const LaunchError&) {
    }
    for (const std::string folder : {"/usr/sbin", "/sbin"}) {  // daemons, when sbin is off PATH
      if (::access((folder + "/" + program).c_str(), X_OK) == 0) return folder + "/" + program;
    }
    return "";
  }

  std::string dir_;
  std::string conf_;
  Process controller_;
  Process node_daemon_;
};

// Submits `config` as one node of 2 CPU ranks with `sets` (--set options); the Slurm job id.
std::string submit_two_ranks(const std::string& dir, const std::string& config,
                             const std::vector<std::string>& sets,
                             const std::vector<std::string>& options = {}) {
  std::vector<std::string> argv = {testing::launch_binary(),
                                   "sbatch",
                                   "--config",
                                   config,
                                   "--nodes",
                                   "1",
                                   "--gpus-per-node",
                                   "0",
                                   "--ranks-per-node",
                                   "2",
                                   "--time",
                                   "10",
                                   "--out",
                                   dir + "/job.sbatch",
                                   "--submit"};
  for (const std::string& set : sets) argv.insert(argv.end(), {"--set", set});
  argv.insert(argv.end(), options.begin(), options.end());
  Command submit(argv, dir + "/submit.log");
  EXPECT_EQ(submit.wait_exit(kSlurmSeconds), 0) << submit.output();
  std::smatch submitted;
  const std::string submit_output = submit.output();
  if (!std::regex_search(submit_output, submitted, std::regex(R"(submitted job (\d+))"))) {
    ADD_FAILURE() << submit_output;
    return "";
  }
  return submitted[1].str();
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
class Slurm : public ::testing::Test {
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

  // Slurm's output file of `job` (both runs append to it).
  std::string output_of(const std::string& job) const {
    return dir_ + "/run/slurm-" + job + ".out";
  }

  void wait_for_output(const std::string& job, const std::string& pattern) {
    const std::regex expression(pattern);
    ASSERT_TRUE(eventually([&] { return std::regex_search(read_text(output_of(job)), expression); },
                           kJobSeconds))
        << "no \"" << pattern << "\" in\n"
        << read_text(output_of(job));
  }

  void wait_until_completed(const std::string& job) {
    ASSERT_TRUE(eventually([&] { return cluster_->job_field(job, "JobState") == "COMPLETED"; },
                           kJobSeconds))
        << "state " << cluster_->job_field(job, "JobState") << "\n"
        << read_text(output_of(job));
  }

  // Nothing of the job's two runs is left: processes, rings, socket folders, shared memory.
  void expect_both_runs_left_nothing(const std::string& job) {
    for (const std::string run : {"0", "1"}) {
      testing::expect_nothing_left("slurm-" + job + "-" + run);
      EXPECT_FALSE(fs::exists("/tmp/hds-" + job + "-" + run)) << "socket folder of run " << run;
    }
    testing::expect_no_new_shared_memory(shared_memory_);
  }

  std::string dir_;
  std::set<std::string> shared_memory_;
  std::optional<SlurmCluster> cluster_;
};

TEST_F(Slurm, preempted_job_requeues_resumes_from_its_checkpoint_and_finishes) {
  ASSERT_NO_FATAL_FAILURE(start_cluster("slurm"));
  const std::string& dir = dir_;

  const std::string config = testing::write_tiny_job(dir, 10);
  // Metrics on, so that each run lists its processes for Prometheus.
  const int ports = hds::test::free_ports(3);
  ASSERT_GT(ports, 0);
  const std::string targets = dir + "/targets";
  const std::string job = submit_two_ranks(
      dir, config,
      {"monitoring.metrics_port=" + std::to_string(ports), "monitoring.data_service_port_offset=2",
       "monitoring.targets_dir=" + targets});
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

  ASSERT_NO_FATAL_FAILURE(wait_until_completed(job));
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
  const std::string job = submit_two_ranks(
      dir, config,
      {"distributed.collective_timeout_seconds=600", "distributed.stop_grace_seconds=2",
       "distributed.stop_checkpoint_seconds=20"});
  ASSERT_FALSE(job.empty());
  const std::string output = output_of(job);
  ASSERT_NO_FATAL_FAILURE(wait_for_output(job, R"(epoch \d+/\d+ step)"));

  // Rank 1 of the first run frozen: the ranks cannot agree on a step, so the stop escalates.
  const pid_t frozen = slurm_rank(job, "0", 1);
  ASSERT_GT(frozen, 0) << ::testing::PrintToString(
      testing::processes_mentioning("slurm-" + job + "-0"));
  ::kill(frozen, SIGSTOP);
  cluster_->client({"scancel", "--signal=USR1", "--batch", job});

  ASSERT_NO_FATAL_FAILURE(wait_until_completed(job));
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
  const std::string job = submit_two_ranks(dir, config, {}, {"--max-restarts", "2"});
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
  ASSERT_NO_FATAL_FAILURE(
      wait_for_output(job, R"(restart 2/2: the data services are ready again(.*\n)*epoch)"));
  EXPECT_EQ(slurm_rank(job, "1", 1), rank_before) << "the ranks were not restarted";

  ASSERT_NO_FATAL_FAILURE(wait_until_completed(job));
  const std::string log = read_text(output);
  EXPECT_NE(log.find("restart 1/2 after the trainers exited with status"), std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(
      log,
      std::regex(R"(resumed from .*: the previous launch had done \d+ steps, \d+ are redone)")))
      << log;
  EXPECT_NE(log.find("resumed from " + dir + "/run/checkpoints/step-"), std::string::npos) << log;
  EXPECT_NE(log.find("restart 2/2: a data service died while the trainers ran"), std::string::npos)
      << log;
  EXPECT_NE(log.find("reconnected to the data service"), std::string::npos) << log;
  const nlohmann::json summary = nlohmann::json::parse(read_text(dir + "/run/summary.json"));
  EXPECT_EQ(summary["global_step"].get<int>(), kEpochs * 2);
  expect_both_runs_left_nothing(job);
}

}  // namespace
}  // namespace hds::launch

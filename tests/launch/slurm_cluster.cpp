#include "slurm_cluster.h"

#include <unistd.h>

#include "launch_test_support.h"

namespace hds::launch::testing {
namespace {

constexpr double kSlurmSeconds = 30;  // daemons starting, stopping, a client answering

}  // namespace

std::string SlurmCluster::unavailable_reason() {
  if (geteuid() != 0) return "needs root (slurmd starts job steps as their user)";
  for (const std::string program :
       {"slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "sinfo", "squeue"}) {
    if (installed_program(program).empty()) {
      return program + " is not installed (apt-get install slurm-wlm)";
    }
  }
  return "";
}

SlurmCluster::SlurmCluster(const std::string& dir) : dir_(dir) {
  start({"NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024"});
}

SlurmCluster::SlurmCluster(const std::string& dir, const VirtualNodes& nodes)
    : dir_(dir), nodes_(&nodes) {
  std::vector<std::string> node_lines;
  for (int node = 0; node < nodes.size(); ++node) {
    node_lines.push_back("NodeName=" + VirtualNodes::name(node) +
                         " NodeAddr=" + VirtualNodes::address(node) + " CPUs=2 RealMemory=1024");
  }
  start(node_lines);
}

void SlurmCluster::start(const std::vector<std::string>& node_lines) {
  fs::create_directories(dir_ + "/state");
  const bool virtual_nodes = nodes_ != nullptr;
  std::string names;
  for (const std::string& line : node_lines) {
    const std::string name = line.substr(9, line.find(' ') - 9);  // after "NodeName="
    names += (names.empty() ? "" : ",") + name;
    fs::create_directories(dir_ + "/spool/" + name);
  }
  const std::string controller = virtual_nodes
                                     ? VirtualNodes::name(0) + "(" + VirtualNodes::address(0) + ")"
                                     : "localhost(127.0.0.1)";
  conf_ = dir_ + "/slurm.conf";
  std::string text =
      "ClusterName=ci\n"
      "SlurmctldHost=" +
      controller +
      "\n"
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
      dir_ +
      "/state\n"
      // %n: the node's name, so that the nodes' daemons keep their files apart.
      "SlurmdSpoolDir=" +
      dir_ +
      "/spool/%n\n"
      "SlurmctldPidFile=" +
      dir_ +
      "/slurmctld.pid\n"
      "SlurmdPidFile=" +
      dir_ +
      "/slurmd-%n.pid\n"
      "SlurmctldLogFile=" +
      dir_ +
      "/slurmctld.log\n"
      "SlurmdLogFile=" +
      dir_ +
      "/slurmd-%n.log\n"
      "SlurmctldPort=6817\n"
      "SlurmdPort=6818\n"
      "JobAcctGatherType=jobacct_gather/none\n"
      "AccountingStorageType=accounting_storage/none\n"
      "JobCompType=jobcomp/none\n";
  for (const std::string& line : node_lines) text += line + "\n";
  text += "PartitionName=debug Nodes=" + names + " Default=YES MaxTime=INFINITE State=UP\n";
  write_text(conf_, text);
  setenv("SLURM_CONF", conf_.c_str(), 1);

  // In the foreground (-D), as our children: stopping them can then wait on them.
  SpawnOptions options;
  options.output_file = dir_ + "/daemons.log";
  controller_ =
      Process::spawn(on_head_node({installed_program("slurmctld"), "-D", "-f", conf_}), options);
  for (size_t node = 0; node < node_lines.size(); ++node) {
    std::vector<std::string> argv = {installed_program("slurmd"),
                                     "-D",
                                     "-f",
                                     conf_,
                                     "-N",
                                     virtual_nodes ? VirtualNodes::name(node) : "localhost"};
    if (virtual_nodes) argv = nodes_->on(static_cast<int>(node), argv);
    node_daemons_.push_back(Process::spawn(argv, options));
  }
}

SlurmCluster::~SlurmCluster() {
  client({"scontrol", "shutdown"});
  for (Process& daemon : node_daemons_) {
    if (!daemon.wait_for(kSlurmSeconds)) ADD_FAILURE() << "a slurmd ignored scontrol shutdown";
  }
  if (!controller_.wait_for(kSlurmSeconds)) {
    ADD_FAILURE() << "slurmctld ignored scontrol shutdown";
  }
  unsetenv("SLURM_CONF");
}

bool SlurmCluster::wait_until_idle(std::string& why) {
  // One line per state: "idle" alone once every node is.
  std::string state;
  if (eventually(
          [&] {
            return (state = client({"sinfo", "-h", "-o", "%T"})) == "idle\n";
          },
          kSlurmSeconds)) {
    return true;
  }
  why = "sinfo says \"" + state + "\"; slurmctld.log:\n" + read_text(dir_ + "/slurmctld.log");
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("slurmd-", 0) == 0 && entry.path().extension() == ".log") {
      why += "\n" + name + ":\n" + read_text(entry.path().string());
    }
  }
  return false;
}

std::string SlurmCluster::client(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = arguments;
  argv[0] = installed_program(argv[0]);
  Command run(on_head_node(argv), dir_ + "/client.log");
  run.wait_exit(kSlurmSeconds);
  return run.output();
}

std::vector<std::string> SlurmCluster::on_head_node(const std::vector<std::string>& argv) const {
  return nodes_ ? nodes_->on(0, argv) : argv;
}

std::string SlurmCluster::job_field(const std::string& job, const std::string& field) {
  const std::string text = client({"scontrol", "show", "job", job});
  std::smatch match;
  if (!std::regex_search(text, match, std::regex("\\b" + field + "=(\\S+)"))) return "";
  return match[1].str();
}

std::vector<std::string> sbatch_cpu_job(const std::string& dir, const std::string& config,
                                        int nodes, int ranks_per_node,
                                        const std::vector<std::string>& sets,
                                        const std::vector<std::string>& options) {
  std::vector<std::string> argv = {launch_binary(),
                                   "sbatch",
                                   "--config",
                                   config,
                                   "--nodes",
                                   std::to_string(nodes),
                                   "--gpus-per-node",
                                   "0",
                                   "--ranks-per-node",
                                   std::to_string(ranks_per_node),
                                   "--time",
                                   "10",
                                   "--out",
                                   dir + "/job.sbatch",
                                   "--submit"};
  for (const std::string& set : sets) argv.insert(argv.end(), {"--set", set});
  argv.insert(argv.end(), options.begin(), options.end());
  return argv;
}

std::string SlurmJobTest::submit(const std::vector<std::string>& argv) {
  Command run(cluster_->on_head_node(argv), dir_ + "/submit.log");
  EXPECT_EQ(run.wait_exit(60), 0) << run.output();
  std::smatch submitted;
  const std::string output = run.output();
  if (!std::regex_search(output, submitted, std::regex(R"(submitted job (\d+))"))) {
    ADD_FAILURE() << output;
    return "";
  }
  return submitted[1].str();
}

std::string SlurmJobTest::output_of(const std::string& job) const {
  return dir_ + "/run/slurm-" + job + ".out";
}

void SlurmJobTest::wait_for_output(const std::string& job, const std::string& pattern) {
  const std::regex expression(pattern);
  ASSERT_TRUE(eventually([&] { return std::regex_search(read_text(output_of(job)), expression); },
                         kSlurmJobSeconds))
      << "no \"" << pattern << "\" in\n"
      << read_text(output_of(job));
}

void SlurmJobTest::wait_until(const std::string& job, const std::string& state) {
  std::string now;
  ASSERT_TRUE(eventually([&] { return (now = cluster_->job_field(job, "JobState")) == state; },
                         kSlurmJobSeconds))
      << "state " << now << "\n"
      << read_text(output_of(job));
}

}  // namespace hds::launch::testing

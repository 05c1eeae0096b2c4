#include "hds/launch/slurm_run.h"

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <sstream>

#include "hds/common/job_id.h"
#include "hds/config/config.h"
#include "hds/launch/process.h"
#include "hds/launch/prometheus_targets.h"
#include "hds/launch/supervisor.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

// How long a Slurm command (squeue, scancel, scontrol, a one-task srun) may take.
constexpr double kSlurmCommandSeconds = 60;

// The name of the step that runs node `node`'s data service.
std::string service_step_name(const std::string& node) { return "hds-data-service-" + node; }
// Its log: <prefix>-<node>.log.
std::string service_log_path(const std::string& prefix, const std::string& node) {
  return prefix + "-" + node + ".log";
}

// The programs of Slurm the backend drives, found on PATH once.
struct SlurmPrograms {
  std::string srun = find_system_program("srun", "", "HDS_SRUN");
  std::string scontrol = find_system_program("scontrol", "", "HDS_SCONTROL");
  std::string scancel = find_system_program("scancel", "", "HDS_SCANCEL");
  std::string squeue = find_system_program("squeue", "", "HDS_SQUEUE");
};

class SlurmBackend final : public JobBackend {
 public:
  SlurmBackend(const SlurmRunOptions& options, const hds::config::Config& config,
               const SlurmPrograms& programs, SlurmAllocation allocation, JobMessages& messages)
      : options_(options),
        config_(config),
        programs_(programs),
        allocation_(std::move(allocation)),
        messages_(messages),
        run_name_(allocation_.job_id + "-" + std::to_string(allocation_.run)),
        job_id_("slurm-" + run_name_),
        output_dir_(absolute_output_dir(config)),
        socket_("/tmp/hds-" + run_name_ + "/data.sock"),
        segments_("/dev/shm/hds-" + run_name_),
        service_log_prefix_(output_dir_ + "/data-service-" + run_name_),
        services_(allocation_.nodes.size()) {}

  ~SlurmBackend() override {
    end_attempt();
    remove_targets_file();
  }
  SlurmBackend(const SlurmBackend&) = delete;
  SlurmBackend& operator=(const SlurmBackend&) = delete;

  const std::string& job_id() const { return job_id_; }
  std::string service_log_pattern() const { return service_log_prefix_ + "-<node>.log"; }

  int service_count() const override { return static_cast<int>(allocation_.nodes.size()); }

  std::vector<std::string> start_services(const std::string& ready_dir) override {
    attempt_started_ = true;
    std::vector<std::string> started;
    for (size_t node = 0; node < services_.size(); ++node) {
      if (services_[node].running()) continue;
      const std::string& name = allocation_.nodes[node];
      std::error_code error;
      fs::remove(fs::path(ready_dir) / name, error);
      services_[node] =
          Process::spawn(slurm_service_command(options_, programs_.srun, socket_, job_id_,
                                               service_log_prefix_, ready_dir, name),
                         SpawnOptions{});
      started.push_back(service_name(node));
    }
    if (!targets_written_) {
      targets_written_ = true;
      // Prometheus finds this run's services and ranks from now on (monitoring.targets_dir).
      try {
        targets_file_ = write_targets_file(
            config_.monitoring(),
            {job_id_, allocation_.nodes, options_.ranks_per_node, allocation_.job_id});
        if (!targets_file_.empty()) say("Prometheus targets: " + targets_file_);
      } catch (const LaunchError& error) {
        say(std::string("warning: no Prometheus targets file (the job runs on without it): ") +
            error.what());
      }
    }
    return started;
  }

  bool services_running() override {
    reap();
    for (const Process& service : services_) {
      if (!service.running()) return false;
    }
    return true;
  }

  std::string describe_services_end() const override {
    std::vector<std::string> ended;
    for (size_t node = 0; node < services_.size(); ++node) {
      if (services_[node].started() && !services_[node].running()) {
        ended.push_back(service_name(node) + " ended (its srun " +
                        describe_wait_status(services_[node].wait_status()) + ")");
      }
    }
    return ended.empty() ? "a data service ended" : join(ended, "; ");
  }

  std::string service_logs(int lines) const override {
    // The ended services' logs; while none has ended (a slow load), the newest one's.
    std::vector<std::string> shown;
    for (size_t node = 0; node < services_.size(); ++node) {
      if (services_[node].started() && !services_[node].running()) shown.push_back(log_of(node));
    }
    if (shown.empty()) {
      std::optional<fs::file_time_type> newest;
      for (size_t node = 0; node < services_.size(); ++node) {
        std::error_code error;
        const auto time = fs::last_write_time(log_of(node), error);
        if (!error && (!newest || time > *newest)) newest = time, shown = {log_of(node)};
      }
    }
    std::string text = "their logs: " + service_log_pattern();
    for (const std::string& log : shown) {
      text += "; " + log + " ends:\n" + last_lines(log, lines);
    }
    return text;
  }

  void kill_services() override {
    for (size_t node = 0; node < services_.size(); ++node) kill_service(node);
  }

  std::string kill_service_of(int rank) override {
    // srun places the ranks in blocks: node i holds ranks i * ranks_per_node onwards.
    const size_t node = static_cast<size_t>(rank / options_.ranks_per_node);
    kill_service(node);
    return service_name(node);
  }

  bool stop_services(double seconds) override {
    // srun would turn a SIGTERM into SIGKILL for its tasks: the signal goes through Slurm. An
    // end noticed before is said already.
    for (size_t node = 0; node < services_.size(); ++node) {
      if (services_[node].running()) cancel_step(step_name(node), SIGTERM, services_[node]);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    bool clean = true;
    for (size_t node = 0; node < services_.size(); ++node) {
      Process& service = services_[node];
      if (!service.running()) continue;
      const double left =
          std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
      if (!service.wait_for(std::max(0.0, left))) {
        say(service_name(node) + " did not stop within " +
            std::to_string(static_cast<int>(seconds)) + " s of SIGTERM: killed");
        kill_service(node);
        service.wait_for(kKillSeconds);
        clean = false;
      } else if (service.wait_status() != 0) {
        say(service_name(node) + "'s step " + describe_wait_status(service.wait_status()) +
            " on stopping; see " + service_log_pattern());
        clean = false;
      }
    }
    return clean;
  }

  void start_ranks(
      bool /*resume_auto: always, a requeued run resumes its own checkpoint*/) override {
    attempt_started_ = true;
    const bool segments_made = on_every_node({"mkdir", "-p", segments_});
    if (!segments_made) {
      say("warning: cannot create " + segments_ +
          " on every node: Open MPI's segments go to its default");
    }
    say("starting " + std::to_string(ranks()) + " trainer rank(s)");
    ranks_ = Process::spawn(slurm_trainer_command(options_, allocation_, programs_.srun, socket_,
                                                  job_id_, segments_made ? segments_ : ""),
                            SpawnOptions{});
  }

  bool ranks_running() override {
    reap();
    return ranks_.running();
  }

  void signal_ranks(int number) override { ranks_.signal(number); }  // srun passes it on

  void kill_ranks() override {
    cancel_step("hds-trainer", SIGKILL, ranks_);
    ranks_.signal(SIGKILL);
  }

  int collect_ranks() override { return exit_code_of(ranks_.wait_status()); }

  std::string describe_ranks_end() const override {
    return describe_launcher_end("srun", ranks_.wait_status());
  }

  std::string trainer_log() const override {
    return output_dir_ + "/slurm-" + allocation_.job_id + ".out";
  }

  void wait(int signal_fd, int milliseconds) override {
    pollfd watched{signal_fd, POLLIN, 0};
    ::poll(&watched, 1, milliseconds);
  }

  void end_attempt() override {
    if (!attempt_started_) return;
    attempt_started_ = false;
    for (Process* process : children()) {
      if (process->running()) {
        process->signal(SIGKILL);
        process->wait_for(kKillSeconds);
      }
    }
    // Every node's share: Open MPI's segments, the socket folder, rings a killed service left.
    const std::string rings = "/dev/shm/" + hds::common::ring_file_prefix(job_id_);
    on_every_node({"/bin/sh", "-c",
                   "rm -rf " + shell_quote(segments_) + " " +
                       shell_quote(fs::path(socket_).parent_path().string()) + " " +
                       shell_quote(rings) + "*"});
    std::error_code error;  // this node's at least, should srun no longer run
    fs::remove_all(segments_, error);
    fs::remove_all(fs::path(socket_).parent_path(), error);
    for (const std::string& ring : leftover_rings(job_id_)) fs::remove(ring, error);
  }

  bool requeue() override {
    // Slurm cancels this run as soon as it is requeued: what must go goes first.
    remove_targets_file();
    say("requeueing job " + allocation_.job_id + "; its next run resumes from " + output_dir_ +
        "/checkpoints/latest");
    const CommandResult result =
        run_to_end({programs_.scontrol, "requeue", allocation_.job_id}, kSlurmCommandSeconds);
    if (!result.finished || result.status != 0) {
      say("error: scontrol requeue " + allocation_.job_id + " failed: " + result.output +
          " (resume by submitting the script again)");
    }
    return true;  // either way this run ends with its checkpoint
  }

 private:
  void say(const std::string& line) { messages_.say(line); }

  // "the data service on node2".
  std::string service_name(size_t node) const {
    return "the data service on " + allocation_.nodes[node];
  }
  std::string step_name(size_t node) const { return service_step_name(allocation_.nodes[node]); }
  std::string log_of(size_t node) const {
    return service_log_path(service_log_prefix_, allocation_.nodes[node]);
  }

  void kill_service(size_t node) {
    if (services_[node].running()) cancel_step(step_name(node), SIGKILL, services_[node]);
  }

  // The sruns this backend started: the services' steps and the ranks'.
  std::vector<Process*> children() {
    std::vector<Process*> all = {&ranks_};
    for (Process& service : services_) all.push_back(&service);
    return all;
  }

  void reap() { reap_children(children()); }

  int ranks() const { return static_cast<int>(allocation_.nodes.size()) * options_.ranks_per_node; }

  // Runs `command` once on every node of the job; true when it succeeded on each.
  bool on_every_node(const std::vector<std::string>& command) {
    const std::string nodes = std::to_string(allocation_.nodes.size());
    std::vector<std::string> argv = {
        programs_.srun,      "--overlap",           "--mpi=none",          "--nodes=" + nodes,
        "--ntasks=" + nodes, "--ntasks-per-node=1", "--job-name=hds-setup"};
    argv.insert(argv.end(), command.begin(), command.end());
    const CommandResult result = run_to_end(argv, kSlurmCommandSeconds);
    return result.finished && result.status == 0;
  }

  // Sends `number` to every task of this job's step named `name` through Slurm; to `step_srun`
  // itself when the step is not (or no longer) known.
  void cancel_step(const std::string& name, int number, Process& step_srun) {
    const CommandResult steps = run_to_end({programs_.squeue, "--steps", "--jobs",
                                            allocation_.job_id, "--noheader", "--format", "%i %j"},
                                           kSlurmCommandSeconds);
    std::istringstream lines(steps.output);
    for (std::string step, step_name; lines >> step >> step_name;) {
      if (step_name == name) {
        run_to_end({programs_.scancel, "--signal=" + std::string(sigabbrev_np(number)), step},
                   kSlurmCommandSeconds);
        return;
      }
    }
    step_srun.signal(number);
  }

  void remove_targets_file() {
    if (!targets_file_.empty()) fs::remove(targets_file_);
    targets_file_.clear();
  }

  const SlurmRunOptions& options_;
  const hds::config::Config& config_;
  const SlurmPrograms& programs_;
  const SlurmAllocation allocation_;
  JobMessages& messages_;
  const std::string run_name_;  // <Slurm job id>-<run>
  const std::string job_id_;    // slurm-<Slurm job id>-<run>
  const std::string output_dir_;
  const std::string socket_;    // the same path on every node
  const std::string segments_;  // Open MPI's, on every node
  const std::string service_log_prefix_;
  bool targets_written_ = false;
  std::string targets_file_;
  bool attempt_started_ = false;   // something to end and remove
  std::vector<Process> services_;  // srun of each node's service step, in node order
  Process ranks_;                  // srun of the trainers' step
};

}  // namespace

SlurmAllocation current_allocation(const std::string& scontrol) {
  SlurmAllocation allocation;
  allocation.job_id = environment("SLURM_JOB_ID");
  const std::string node_list = environment("SLURM_JOB_NODELIST");
  if (allocation.job_id.empty() || node_list.empty()) {
    throw UsageError(
        "slurm-run runs inside a Slurm batch job (SLURM_JOB_ID and SLURM_JOB_NODELIST are not "
        "set): submit the script hds-launch sbatch writes");
  }
  const std::string restarts = environment("SLURM_RESTART_COUNT");
  allocation.run = restarts.empty() ? 0 : std::stoi(restarts);
  const CommandResult hosts =
      run_to_end({scontrol, "show", "hostnames", node_list}, kSlurmCommandSeconds);
  std::istringstream names(hosts.output);
  for (std::string name; names >> name;) allocation.nodes.push_back(name);
  if (!hosts.finished || hosts.status != 0 || allocation.nodes.empty()) {
    throw LaunchError("scontrol show hostnames " + node_list + " failed: " + hosts.output);
  }
  return allocation;
}

std::vector<std::string> slurm_service_command(const SlurmRunOptions& options,
                                               const std::string& srun, const std::string& socket,
                                               const std::string& job_id,
                                               const std::string& service_log_prefix,
                                               const std::string& ready_dir,
                                               const std::string& node) {
  return {srun,
          "--overlap",
          "--mpi=none",
          "--nodes=1",
          "--ntasks=1",
          "--nodelist=" + node,
          "--job-name=" + service_step_name(node),
          "--output=" + service_log_path(service_log_prefix, node),
          "--open-mode=append",
          options.data_service,
          "serve",
          "--config",
          options.config_path,
          "--socket",
          socket,
          "--job-id",
          job_id,
          "--ready-file",
          ready_dir + "/" + node};
}

std::vector<std::string> slurm_trainer_command(const SlurmRunOptions& options,
                                               const SlurmAllocation& allocation,
                                               const std::string& srun, const std::string& socket,
                                               const std::string& job_id,
                                               const std::string& segments) {
  const int nodes = static_cast<int>(allocation.nodes.size());
  std::vector<std::string> command = {srun,
                                      "--mpi=pmix",
                                      "--kill-on-bad-exit=1",
                                      "--nodes=" + std::to_string(nodes),
                                      "--ntasks=" + std::to_string(nodes * options.ranks_per_node),
                                      "--ntasks-per-node=" + std::to_string(options.ranks_per_node),
                                      "--job-name=hds-trainer"};
  if (!segments.empty()) {
    // A rank killed with SIGKILL leaves its segments behind, and /dev/shm is memory.
    command.push_back("--export=ALL,OMPI_MCA_btl_vader_backing_directory=" + segments +
                      ",OMPI_MCA_orte_tmpdir_base=" + segments);
  }
  command.insert(command.end(),
                 {options.trainer, "fit", "--config", options.config_path, "--set",
                  "data.service_socket=" + socket, "--set", "data.service_job_id=" + job_id});
  if (options.max_restarts > 0) {
    // A service that dies is restarted in place: the ranks wait for it as long as it may load.
    command.insert(command.end(),
                   {"--set", service_reconnect_assignment(options.ready_timeout_seconds)});
  }
  if (!options.init_from.empty()) command.insert(command.end(), {"--init-from", options.init_from});
  // A requeued run resumes its own checkpoint; the first starts afresh (or from --init-from).
  command.insert(command.end(), {"--resume", "auto"});
  return command;
}

int run_slurm(const SlurmRunOptions& options, std::ostream& messages) {
  const hds::config::Config config = hds::config::load_config(options.config_path, {});
  const SlurmPrograms programs;
  SlurmAllocation allocation = current_allocation(programs.scontrol);
  JobMessages job_messages(messages, /*timestamps=*/true);
  hds::common::CaughtSignals signals = catch_stop_signals();
  const std::string slurm_job_id = allocation.job_id;
  job_messages.say("run " + std::to_string(allocation.run) + " of job " + slurm_job_id + " on " +
                   environment("SLURM_JOB_NODELIST") + ": " +
                   std::to_string(allocation.nodes.size()) + " data service(s)");
  SlurmBackend backend(options, config, programs, std::move(allocation), job_messages);
  JobPolicy policy =
      job_policy(config, backend.job_id(), backend.service_count() * options.ranks_per_node,
                 options.max_restarts);
  policy.ready_timeout_seconds = options.ready_timeout_seconds;
  policy.restarts_file = policy.output_dir + "/.restarts-" + slurm_job_id;
  const int code = supervise_job(policy, backend, signals, job_messages);
  const std::string metrics =
      hds::config::describe_metrics_endpoints(config.monitoring(), options.ranks_per_node);
  print_job_report(messages,
                   {backend.job_id(), policy.output_dir,
                    metrics + (config.monitoring().metrics_port() != 0 ? " on every node" : ""),
                    backend.trainer_log(), backend.service_log_pattern(), ""},
                   code);
  return code;
}

}  // namespace hds::launch

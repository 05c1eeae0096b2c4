#include "hds/launch/local_launch.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "hds/common/host_name.h"
#include "hds/common/terminal.h"
#include "hds/config/config.h"
#include "hds/launch/job_lock.h"
#include "hds/launch/process.h"
#include "hds/launch/prometheus_targets.h"
#include "hds/launch/supervisor.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

std::string now_text() {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return text;
}

// What lives as long as the job on this machine, removed when it ends (and, should the launcher
// be killed, by the next launch: the job lock records each).
class LocalJobFiles {
 public:
  LocalJobFiles(JobLock& lock, const std::string& socket_option) : lock_(lock) {
    choose_socket(socket_option);
    make_segment_directory();
  }
  ~LocalJobFiles() {
    if (!targets_file_.empty()) ::unlink(targets_file_.c_str());
    if (!socket_directory_.empty()) ::rmdir(socket_directory_.c_str());
    if (!segment_directory_.empty()) {
      std::error_code error;
      fs::remove_all(segment_directory_, error);
    }
  }
  LocalJobFiles(const LocalJobFiles&) = delete;
  LocalJobFiles& operator=(const LocalJobFiles&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  const std::string& segment_directory() const { return segment_directory_; }

  void set_targets_file(const std::string& path) {
    targets_file_ = path;
    if (!path.empty()) lock_.record("targets_file", path);
  }

 private:
  void choose_socket(const std::string& socket_option) {
    if (!socket_option.empty()) {
      socket_path_ = fs::absolute(socket_option).string();
      lock_.record("socket", socket_path_);
      return;
    }
    // A private directory of ours: no one else can put a socket where the trainers will look.
    std::string pattern = "/tmp/hds-launch-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw LaunchError(std::string("cannot create a socket directory under /tmp: ") +
                        std::strerror(errno));
    }
    socket_directory_ = pattern;
    lock_.record("socket_directory", socket_directory_);
    socket_path_ = socket_directory_ + "/data.sock";
  }

  // Open MPI's shared-memory segments go to a private folder removed at the end: a rank killed
  // with SIGKILL leaves its segment behind, and /dev/shm is memory.
  void make_segment_directory() {
    std::string pattern = "/dev/shm/hds-launch-XXXXXX";
    if (fs::is_directory("/dev/shm") && mkdtemp(pattern.data()) != nullptr) {
      segment_directory_ = pattern;
      lock_.record("segment_directory", segment_directory_);
    }
  }

  JobLock& lock_;
  std::string socket_path_;
  std::string socket_directory_;   // ours to remove; "" when --socket was given
  std::string segment_directory_;  // Open MPI's shared memory; ours to remove
  std::string targets_file_;       // the job's Prometheus file-SD targets; ours to remove
};

// One machine: the data service as a child process, the ranks under mpirun, whose output goes
// to the terminal and to trainer.log.
class LocalBackend final : public JobBackend {
 public:
  LocalBackend(const LocalLaunchOptions& options, const hds::config::Config& config,
               const std::string& job_id, LocalJobFiles& files, std::ostream& trainer_output,
               JobMessages& messages)
      : options_(options),
        config_(config),
        job_id_(job_id),
        files_(files),
        trainer_output_(trainer_output),
        messages_(messages),
        config_path_(fs::absolute(options.config_path).string()),
        output_dir_(absolute_output_dir(config)),
        service_log_((fs::path(output_dir_) / "data-service.log").string()),
        trainer_log_path_((fs::path(output_dir_) / "trainer.log").string()) {
    trainer_log_.open(trainer_log_path_, std::ios::app);
    if (!trainer_log_) throw LaunchError("cannot write " + trainer_log_path_);
  }

  ~LocalBackend() override {
    // Whatever happened, nothing of the job outlives the launcher.
    kill_job_processes(-1);
    remove_service_leftovers();
  }
  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  // How messages name the one service.
  static std::string service_name() { return "the data service"; }
  int service_count() const override { return 1; }

  std::vector<std::string> start_services(const std::string& ready_dir) override {
    if (service_.running()) return {};
    const std::string ready_file = ready_dir + "/" + hds::common::short_host_name();
    std::error_code error;
    fs::remove(ready_file, error);
    remove_service_leftovers();  // of one that was killed
    {
      std::ofstream log(service_log_, std::ios::app);
      log << "==== hds-launch " << now_text() << ": job " << job_id_ << ", socket "
          << files_.socket_path() << " ====" << std::endl;
      if (!log) throw LaunchError("cannot write " + service_log_);
    }
    std::vector<std::string> command = {options_.data_service, "serve", "--config", config_path_};
    for (const std::string& assignment : options_.overrides) {
      command.insert(command.end(), {"--set", assignment});
    }
    command.insert(command.end(), {"--socket", files_.socket_path(), "--job-id", job_id_,
                                   "--ready-file", ready_file});
    SpawnOptions spawn;
    spawn.output_file = service_log_;
    spawn.parent_death_signal = SIGTERM;  // a killed launcher still gets its rings removed
    service_ = Process::spawn(command, spawn);
    say("job " + job_id_ + ": data service (pid " + std::to_string(service_.pid()) +
        ") loading the dataset; log " + service_log_);
    // From now on Prometheus finds the job: the service serves metrics while it loads.
    if (!targets_written_) {
      targets_written_ = true;
      const std::string targets = write_targets_file(
          config_.monitoring(), {job_id_, {hds::common::short_host_name()}, options_.ranks, ""});
      files_.set_targets_file(targets);
      if (!targets.empty()) say("Prometheus targets: " + targets);
    }
    return {service_name()};
  }

  bool services_running() override {
    reap_children({&service_, &mpirun_});
    return service_.running();
  }

  std::string describe_services_end() const override {
    return "the data service (pid " + std::to_string(service_.pid()) + ") " +
           describe_wait_status(service_.wait_status());
  }

  std::string service_logs(int lines) const override {
    return "its log " + service_log_ + " ends:\n" + last_lines(service_log_, lines);
  }

  void kill_services() override { service_.signal(SIGKILL); }

  std::string kill_service_of(int /*rank: every rank has this one*/) override {
    kill_services();
    return service_name();
  }

  bool stop_services(double seconds) override {
    bool clean = true;
    if (service_.running()) {
      service_.signal(SIGTERM);  // it ends its sessions, removes rings and socket, exits 0
      if (!service_.wait_for(seconds)) {
        say("the data service did not stop within " + std::to_string(static_cast<int>(seconds)) +
            " s of SIGTERM: killed");
        service_.signal(SIGKILL);
        service_.wait_for(kKillSeconds);
        clean = false;
      } else if (service_.wait_status() != 0) {
        say("the data service " + describe_wait_status(service_.wait_status()) +
            " on stopping; see " + service_log_);
        clean = false;
      }
    }
    remove_service_leftovers();
    return clean;
  }

  void start_ranks(bool resume_auto) override {
    LocalLaunchOptions attempt = options_;
    if (resume_auto) attempt.resume = "auto";
    output_open_ = true;
    const std::vector<std::string> command = mpirun_command(
        attempt, files_.socket_path(), job_id_, physical_cores(), files_.segment_directory());
    trainer_log_ << "==== hds-launch " << now_text() << ": job " << job_id_ << ", "
                 << options_.ranks << " ranks:";
    for (const std::string& word : command) trainer_log_ << " " << shell_quote(word);
    trainer_log_ << " ====" << std::endl;
    SpawnOptions spawn;
    spawn.pipe_output = true;
    spawn.parent_death_signal = SIGTERM;  // mpirun then ends its job
    mpirun_ = Process::spawn(command, spawn);
    say("mpirun (pid " + std::to_string(mpirun_.pid()) + ") started " +
        std::to_string(options_.ranks) + " trainer rank(s); output also in " + trainer_log_path_);
    say("metrics: " +
        hds::config::describe_metrics_endpoints(config_.monitoring(), options_.ranks));
  }

  bool ranks_running() override {
    reap_children({&service_, &mpirun_});
    return mpirun_.running();
  }

  // mpirun forwards SIGUSR1 and SIGUSR2 to every rank.
  void signal_ranks(int number) override { mpirun_.signal(number); }

  void kill_ranks() override {
    for (pid_t pid : descendants_of(mpirun_.pid())) ::kill(pid, SIGKILL);
    mpirun_.signal(SIGKILL);
  }

  int collect_ranks() override {
    // Ranks that outlived mpirun (e.g. killed mpirun, a rank ignoring the teardown) hold the
    // output pipe open: end them before reading it to its end.
    if (kill_job_processes(service_.running() ? service_.pid() : -1) > 0) {
      say("killed trainer processes that outlived mpirun");
    }
    const auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (output_open_ && std::chrono::steady_clock::now() < drain_deadline) {
      pollfd output{mpirun_.output_fd(), POLLIN, 0};
      if (::poll(&output, 1, 100) > 0) copy_output();
    }
    return exit_code_of(mpirun_.wait_status());
  }

  std::string describe_ranks_end() const override {
    return describe_launcher_end("mpirun", mpirun_.wait_status());
  }

  std::string trainer_log() const override { return trainer_log_path_; }

  void wait(int signal_fd, int milliseconds) override {
    pollfd watched[2] = {{signal_fd, POLLIN, 0}, {mpirun_.output_fd(), POLLIN, 0}};
    const bool watch_output = output_open_ && mpirun_.started();
    if (::poll(watched, watch_output ? 2 : 1, milliseconds) > 0 && watch_output &&
        (watched[1].revents & (POLLIN | POLLHUP))) {
      copy_output();
    }
  }

  void end_attempt() override {
    if (kill_job_processes(-1) > 0) say("killed processes of the job that were still alive");
    remove_service_leftovers();
    if (!files_.segment_directory().empty()) {
      std::error_code error;
      for (const auto& segment : fs::directory_iterator(files_.segment_directory(), error)) {
        fs::remove_all(segment.path(), error);
      }
    }
  }

  bool requeue() override { return false; }

 private:
  void say(const std::string& line) { messages_.say(line); }

  void copy_output() {
    char buffer[8192];
    const ssize_t n = ::read(mpirun_.output_fd(), buffer, sizeof buffer);
    if (n <= 0) {
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) output_open_ = false;
      return;
    }
    trainer_output_.write(buffer, n);
    trainer_output_.flush();
    trainer_log_ << hds::common::complete_lines_without_redraws(
        log_pending_, std::string(buffer, static_cast<size_t>(n)));
    trainer_log_.flush();
  }

  // SIGKILL to every process of the job but `spared` and its descendants; how many got it.
  int kill_job_processes(pid_t spared) {
    return kill_descendants_except(SIGKILL, spared, {&service_, &mpirun_}, kKillSeconds);
  }

  // The rings and the socket a service that could not stop cleanly left.
  void remove_service_leftovers() {
    for (const std::string& ring : leftover_rings(job_id_)) {
      say("removing ring " + ring + " left behind");
      ::unlink(ring.c_str());
    }
    struct stat status {};
    const std::string& socket = files_.socket_path();
    if (lstat(socket.c_str(), &status) == 0 && S_ISSOCK(status.st_mode)) ::unlink(socket.c_str());
  }

  const LocalLaunchOptions& options_;
  const hds::config::Config& config_;
  const std::string job_id_;
  LocalJobFiles& files_;
  std::ostream& trainer_output_;
  JobMessages& messages_;
  const std::string config_path_;
  const std::string output_dir_;
  const std::string service_log_;
  const std::string trainer_log_path_;
  std::ofstream trainer_log_;
  std::string log_pending_;  // the trainers' output not yet a whole line
  bool targets_written_ = false;
  Process service_;
  Process mpirun_;
  bool output_open_ = true;
};

}  // namespace

int physical_cores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    return std::max(1u, std::thread::hardware_concurrency());
  }
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    const fs::path topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology";
    std::string package, core;
    std::ifstream(topology / "physical_package_id") >> package;
    std::ifstream(topology / "core_id") >> core;
    if (package.empty() || core.empty()) return CPU_COUNT(&allowed);  // no topology: count CPUs
    cores.emplace(package, core);
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

std::vector<std::string> mpirun_command(const LocalLaunchOptions& options,
                                        const std::string& socket_path, const std::string& job_id,
                                        int cores, const std::string& segment_directory) {
  std::vector<std::string> command = {options.mpirun};
  // Open MPI refuses to run as root unless told; as a user the flag is not needed.
  if (geteuid() == 0) command.push_back("--allow-run-as-root");
  // mpirun gives one slot per core and refuses more ranks than slots.
  if (options.ranks > cores) command.push_back("--oversubscribe");
  command.insert(command.end(),
                 {
                     // Ranks run intra-op threads of their own: binding each to one core (Open
                     // MPI's default for up to 2 ranks) would pile those threads onto it.
                     "--bind-to",
                     "none",
                     // A rank waiting in a collective yields the core instead of spinning on it, so
                     // a rank that still computes (or the data service) gets it.
                     "--mca",
                     "mpi_yield_when_idle",
                     "1",
                 });
  // Not set: btl_vader_single_copy_mechanism=none. Shared-memory single copy (CMA,
  // process_vm_readv) worked here as root and as a user; containers whose seccomp profile forbids
  // process_vm_readv need it: export OMPI_MCA_btl_vader_single_copy_mechanism=none (mpirun reads
  // OMPI_MCA_* from its environment).
  if (!segment_directory.empty()) {
    // Its session directory too (/tmp/ompi.<host>.<uid>/pid.<mpirun> by default, with PMIx's
    // shared segments): a killed mpirun leaves it behind.
    command.insert(command.end(), {"--mca", "btl_vader_backing_directory", segment_directory,
                                   "--mca", "orte_tmpdir_base", segment_directory});
  }
  command.insert(command.end(), options.mpirun_arguments.begin(), options.mpirun_arguments.end());
  command.insert(command.end(), {"-np", std::to_string(options.ranks), options.trainer, "fit",
                                 "--config", fs::absolute(options.config_path).string()});
  for (const std::string& assignment : options.overrides) {
    command.insert(command.end(), {"--set", assignment});
  }
  command.insert(command.end(), {"--set", "data.service_socket=" + socket_path, "--set",
                                 "data.service_job_id=" + job_id});
  if (options.max_restarts > 0) {
    // A service that dies is restarted in place: the ranks wait for it as long as it may load.
    command.insert(command.end(),
                   {"--set", service_reconnect_assignment(options.ready_timeout_seconds)});
  }
  // auto: a bar when the launcher (which passes the output on) writes to a terminal.
  std::string progress = options.progress;
  if (progress == "auto") progress = hds::common::redraws_in_place(STDOUT_FILENO) ? "bar" : "lines";
  command.insert(command.end(), {"--progress", progress});
  if (!options.resume.empty()) command.insert(command.end(), {"--resume", options.resume});
  // Also after a restart: the trainer ignores it once the run has a checkpoint to resume.
  if (!options.init_from.empty()) {
    command.insert(command.end(),
                   {"--init-from", checkpoint_argument("--init-from", options.init_from)});
  }
  return command;
}

static void check_one_machine(const std::vector<std::string>& mpirun_arguments) {
  for (const std::string& argument : mpirun_arguments) {
    const std::string option = argument.substr(0, argument.find('='));
    for (const std::string hosts : {"-H", "-host", "--host", "-hostfile", "--hostfile",
                                    "-machinefile", "--machinefile", "--default-hostfile"}) {
      if (option != hosts) continue;
      // Ranks on another machine would find no data service there.
      throw UsageError("--mpirun-arg " + argument +
                       ": hds-launch local runs a job on this machine (one data service, here); "
                       "for several machines use hds-launch sbatch (Slurm) or "
                       "deploy/mpirun/hds-mpirun-job.sh (a data service per host)");
    }
  }
}

int run_local(const LocalLaunchOptions& options, std::ostream& trainer_output,
              std::ostream& messages, std::ostream& report) {
  const hds::config::Config config =
      hds::config::load_config(options.config_path, options.overrides);
  if (options.ranks < 1) throw UsageError("--np must be at least 1");
  check_one_machine(options.mpirun_arguments);
  const std::string job_id = options.job_id.empty() ? default_job_id() : options.job_id;
  check_job_id(job_id);
  if (!options.resume.empty() && options.resume != "auto") {
    checkpoint_argument("--resume", options.resume);
  }
  if (!options.init_from.empty()) checkpoint_argument("--init-from", options.init_from);
  const std::string output_dir = absolute_output_dir(config);
  // Before anything is started: a live job with this id keeps everything it owns.
  clean_abandoned_jobs(messages);
  JobLock lock = JobLock::acquire(job_id, messages);
  std::error_code error;
  fs::create_directories(output_dir, error);
  if (error) throw LaunchError("cannot create " + output_dir + ": " + error.message());
  hds::common::CaughtSignals signals = catch_stop_signals();
  LocalJobFiles files(lock, options.socket_path);
  adopt_orphans();
  JobPolicy policy = job_policy(config, job_id, options.ranks, options.max_restarts);
  policy.ready_timeout_seconds = options.ready_timeout_seconds;
  JobMessages job_messages(messages, /*timestamps=*/false);
  int code = hds::common::kExitError;
  std::string trainer_log;
  {
    LocalBackend backend(options, config, job_id, files, trainer_output, job_messages);
    code = supervise_job(policy, backend, signals, job_messages);
    trainer_log = backend.trainer_log();
  }
  JobReport job_report{job_id,
                       output_dir,
                       hds::config::describe_metrics_endpoints(config.monitoring(), options.ranks),
                       trainer_log,
                       (fs::path(output_dir) / "data-service.log").string(),
                       ""};
  if (code == kExitStopped) {
    job_report.resume_hint = "hds-launch local --config " + shell_quote(options.config_path) +
                             " --np " + std::to_string(options.ranks) +
                             " --resume auto (and the same --set options)";
  }
  print_job_report(report, job_report, code);
  return code;
}

}  // namespace hds::launch

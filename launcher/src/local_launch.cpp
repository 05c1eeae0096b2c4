#include "hds/launch/local_launch.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "hds/common/exit_codes.h"
#include "hds/common/rank_progress.h"
#include "hds/common/terminal.h"
#include "hds/config/config.h"
#include "hds/launch/job_lock.h"
#include "hds/launch/process.h"
#include "hds/launch/prometheus_targets.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// How long the data service may take to stop on SIGTERM, and stray processes to die on SIGKILL.
constexpr double kServiceStopSeconds = 15;
constexpr double kKillSeconds = 5;
// After the data service dies the ranks notice within data.service_timeout_seconds and exit;
// past that and this margin the launcher kills them.
constexpr double kServiceLossMarginSeconds = 20;

Clock::time_point after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string seconds_text(double seconds) {
  std::ostringstream text;
  text << seconds << " s";
  return text.str();
}

std::string now_text() {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return text;
}

// Ended the launch before the trainers finished: a signal while the service was starting.
struct StoppedBySignal {
  int number;
};

class LocalJob {
 public:
  LocalJob(const LocalLaunchOptions& options, std::ostream& trainer_output, std::ostream& messages,
           std::ostream& report)
      : options_(options),
        trainer_output_(trainer_output),
        messages_(messages),
        report_(report),
        config_(hds::config::load_config(options.config_path, options.overrides)),
        config_path_(fs::absolute(options.config_path).string()),
        output_dir_(absolute_output_dir(config_)),
        service_log_((fs::path(output_dir_) / "data-service.log").string()),
        trainer_log_path_((fs::path(output_dir_) / "trainer.log").string()),
        job_id_(options.job_id.empty() ? default_job_id() : options.job_id),
        metrics_(hds::config::describe_metrics_endpoints(config_.monitoring(), options.ranks)) {
    if (options.ranks < 1) throw UsageError("--np must be at least 1");
    check_job_id(job_id_);
    if (!options.resume.empty() && options.resume != "auto") {
      checkpoint_argument("--resume", options.resume);
    }
    if (!options.init_from.empty()) checkpoint_argument("--init-from", options.init_from);
    // Before anything is started: a live job with this id keeps everything it owns.
    clean_abandoned_jobs(messages_);
    lock_.emplace(JobLock::acquire(job_id_, messages_));
  }
  ~LocalJob() {
    // Whatever happened, nothing of the job outlives the launcher.
    kill_descendants(SIGKILL, -1);
    remove_job_files();
  }

  int run() {
    std::error_code error;
    fs::create_directories(output_dir_, error);
    if (error) throw LaunchError("cannot create " + output_dir_ + ": " + error.message());
    trainer_log_.open(trainer_log_path_, std::ios::app);
    if (!trainer_log_) throw LaunchError("cannot write " + trainer_log_path_);
    choose_socket();
    make_segment_directory();
    adopt_orphans();
    int code = kExitLaunchFailed;
    try {
      start_service();
      wait_until_ready();
      start_trainers();
      code = supervise();
      for (;;) {
        const std::string failure = restartable_failure(code);
        if (failure.empty()) break;
        if (restarts_ == options_.max_restarts) {
          if (options_.max_restarts > 0) {
            say("no restart left (--max-restarts " + std::to_string(options_.max_restarts) +
                ") after " + failure);
          }
          break;
        }
        restart(failure);
        code = supervise();
      }
    } catch (const StoppedBySignal& stop) {
      say("stopped by signal " + std::to_string(stop.number) + " before the trainers started");
      code = hds::common::kExitSignalBase + stop.number;
    } catch (const LaunchError& failure) {
      say(failure.what());
      code = kExitLaunchFailed;
    }
    if (!tear_down() && code == 0) code = kExitLaunchFailed;
    print_report(code);
    return code;
  }

 private:
  void say(const std::string& line) { messages_ << "hds-launch: " << line << std::endl; }

  // Open MPI's shared-memory segments go to a private folder removed at the end: a rank killed
  // with SIGKILL leaves its segment behind, and /dev/shm is memory.
  void make_segment_directory() {
    std::string pattern = "/dev/shm/hds-launch-XXXXXX";
    if (fs::is_directory("/dev/shm") && mkdtemp(pattern.data()) != nullptr) {
      segment_directory_ = pattern;
      lock_->record("segment_directory", segment_directory_);
    }
  }

  void choose_socket() {
    if (!options_.socket_path.empty()) {
      socket_path_ = fs::absolute(options_.socket_path).string();
      lock_->record("socket", socket_path_);
      return;
    }
    // A private directory of ours: no one else can put a socket where the trainers will look.
    std::string pattern = "/tmp/hds-launch-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw LaunchError(std::string("cannot create a socket directory under /tmp: ") +
                        std::strerror(errno));
    }
    socket_directory_ = pattern;
    lock_->record("socket_directory", socket_directory_);
    socket_path_ = socket_directory_ + "/data.sock";
  }

  void start_service() {
    {
      std::ofstream log(service_log_, std::ios::app);
      log << "==== hds-launch " << now_text() << ": job " << job_id_ << ", socket " << socket_path_
          << " ====" << std::endl;
      if (!log) throw LaunchError("cannot write " + service_log_);
    }
    ready_offset_ = fs::file_size(service_log_);
    std::vector<std::string> command = {options_.data_service, "serve", "--config", config_path_};
    for (const std::string& assignment : options_.overrides) {
      command.insert(command.end(), {"--set", assignment});
    }
    command.insert(command.end(), {"--socket", socket_path_, "--job-id", job_id_});
    SpawnOptions spawn;
    spawn.output_file = service_log_;
    spawn.parent_death_signal = SIGTERM;  // a killed launcher still gets its rings removed
    service_ = Process::spawn(command, spawn);
    service_started_at_ = hds::common::unix_seconds();
    say("job " + job_id_ + ": data service (pid " + std::to_string(service_.pid()) +
        ") loading the dataset; log " + service_log_);
    // From now on Prometheus finds the job: the service serves metrics while it loads.
    if (targets_file_.empty()) {
      targets_file_ = write_targets_file(config_.monitoring(),
                                         {job_id_, {short_host_name()}, options_.ranks, ""});
      if (!targets_file_.empty()) {
        lock_->record("targets_file", targets_file_);
        say("Prometheus targets: " + targets_file_);
      }
    }
  }

  // Until the service's log says "ready: socket", it exits, the timeout passes or a signal comes.
  void wait_until_ready() {
    const auto deadline = after(options_.ready_timeout_seconds);
    while (!service_ready(deadline)) {
      if (const std::vector<int> numbers = signals_.take(); !numbers.empty()) {
        throw StoppedBySignal{numbers.front()};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // True once the service's log says "ready: socket"; throws LaunchError when it exited first or
  // `deadline` passed.
  bool service_ready(Clock::time_point deadline) {
    std::ifstream log(service_log_);
    log.seekg(static_cast<std::streamoff>(ready_offset_));
    const std::string seen{std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()};
    if (seen.rfind("ready: socket ", 0) == 0 ||
        seen.find("\nready: socket ") != std::string::npos) {
      say("data service ready: socket " + socket_path_);
      return true;
    }
    if (service_.poll()) {
      throw LaunchError("the data service " + describe_wait_status(service_.wait_status()) +
                        " before it was ready; its log " + service_log_ + " ends:\n" +
                        last_lines(service_log_, 15));
    }
    if (Clock::now() > deadline) {
      throw LaunchError("the data service was not ready after " +
                        std::to_string(static_cast<int>(options_.ready_timeout_seconds)) +
                        " s (--ready-timeout); its log " + service_log_ + " ends:\n" +
                        last_lines(service_log_, 15));
    }
    return false;
  }

  // A restart left and no stop asked for.
  bool may_restart() const { return restarts_ < options_.max_restarts && signals_received_ == 0; }

  // The service died while the ranks run: start a new one on the same socket; the ranks wait for
  // it (data.service_reconnect_seconds) and ask it for the batch due.
  void restart_service_in_place() {
    ++restarts_;
    restart_text_ =
        "restart " + std::to_string(restarts_) + "/" + std::to_string(options_.max_restarts);
    say(restart_text_ + ": the data service (pid " + std::to_string(service_.pid()) + ") " +
        describe_wait_status(service_.wait_status()) +
        " while the trainers ran: starting it again in place; the ranks wait for it and go on "
        "from the batch due. Its log " +
        service_log_ + " ends:\n" + last_lines(service_log_, 10));
    for (const std::string& ring : leftover_rings(job_id_)) ::unlink(ring.c_str());
    ::unlink(socket_path_.c_str());
    restart_began_ = Clock::now();
    steps_before_restart_ = steps_done_since(attempt_started_at_);
    restarted_in_place_ = true;
    start_service();
    service_ready_deadline_ = after(options_.ready_timeout_seconds);
    service_restarting_ = true;
  }

  // With restarts on, a service that a rank has declared lost (silent past
  // data.service_timeout_seconds: it waits for a new one) while the process lives is hung
  // (stopped, deadlocked): killed, so that it is restarted in place. One rank is enough: the
  // others may still hold batches, then wait for that rank in a collective.
  void kill_hung_service() {
    if (options_.max_restarts == 0 || service_restarting_ || !service_.running()) return;
    const double now = hds::common::unix_seconds();
    if (now < next_hang_check_) return;
    next_hang_check_ = now + 0.5;
    const hds::common::ProgressTable table(hds::common::progress_table_dir(output_dir_));
    for (int rank = 0; rank < options_.ranks; ++rank) {
      const auto record = table.read(rank);
      // Lost since this service started: not a loss of the one it replaced.
      if (record && record->activity == hds::common::RankActivity::reconnecting &&
          record->written_at - record->activity_seconds > service_started_at_) {
        say("rank " + std::to_string(rank) + " has lost the data service (pid " +
            std::to_string(service_.pid()) + "), which still runs: it is hung; killing it");
        service_.signal(SIGKILL);
        return;
      }
    }
  }

  // What failed in the attempt that just ended, when a new start can mend it; "" otherwise (the
  // run finished, was stopped on request, or met an error that would come again).
  std::string restartable_failure(int code) const {
    if (signals_received_ > 0) return "";
    if (service_failed_) {
      return "the data service (pid " + std::to_string(service_.pid()) + ") " +
             describe_wait_status(service_.wait_status());
    }
    if (!hds::common::is_restartable(code)) return "";
    if (code == hds::common::kExitRankLost) return "a rank hung or was lost (exit 4)";
    const int number = code - hds::common::kExitSignalBase;
    return "a rank was killed by signal " + std::to_string(number) + " (" + strsignal(number) + ")";
  }

  // The most steps any rank of the attempt begun at `since` had finished.
  int64_t steps_done_since(double since) const {
    return hds::common::most_steps_done(
        hds::common::ProgressTable(hds::common::progress_table_dir(output_dir_)), options_.ranks,
        [since](const hds::common::RankProgress& record) { return record.written_at >= since; });
  }

  // Stops what is left of the failed attempt and starts the service and the ranks again, the
  // ranks resuming from the latest checkpoint.
  void restart(const std::string& failure) {
    ++restarts_;
    const int64_t done = steps_done_since(attempt_started_at_);
    restart_text_ =
        "restart " + std::to_string(restarts_) + "/" + std::to_string(options_.max_restarts);
    say(restart_text_ + " after " + failure + " (" + std::to_string(done) +
        " steps done): stopping everything and starting again from the latest checkpoint");
    if (!stop_attempt()) say("the failed attempt did not stop cleanly (see above); going on");
    restart_began_ = Clock::now();
    steps_before_restart_ = done;
    awaiting_resume_ = true;
    start_service();
    wait_until_ready();
    start_trainers();
  }

  // After a restart: once rank 0's record shows the new attempt training again, how long that
  // took and how many steps it redid.
  void report_resume() {
    if (!awaiting_resume_) return;
    const auto record =
        hds::common::ProgressTable(hds::common::progress_table_dir(output_dir_)).read(0);
    if (!record || record->written_at < attempt_started_at_ || record->resumed_from < 0 ||
        record->epoch == 0) {
      return;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - restart_began_).count();
    if (restarted_in_place_) {
      // The ranks kept their state: back once a step beyond the failure is done.
      if (hds::common::completed_steps(*record) <= steps_before_restart_) return;
      awaiting_resume_ = false;
      restarted_in_place_ = false;
      say(restart_text_ + ": training again " + seconds_text(seconds) +
          " after the failure, at global step " +
          std::to_string(hds::common::completed_steps(*record)) + ": 0 steps redone");
      return;
    }
    awaiting_resume_ = false;
    say(restart_text_ + ": training again " + seconds_text(seconds) +
        " after the failure, resumed at global step " + std::to_string(record->resumed_from) +
        ": " + std::to_string(std::max<int64_t>(0, steps_before_restart_ - record->resumed_from)) +
        " steps redone");
  }

  void start_trainers() {
    LocalLaunchOptions attempt = options_;
    if (restarts_ > 0) attempt.resume = "auto";
    attempt_started_at_ = hds::common::unix_seconds();
    service_failed_ = false;
    output_open_ = true;
    const std::vector<std::string> command =
        mpirun_command(attempt, socket_path_, job_id_, physical_cores(), segment_directory_);
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
    say("metrics: " + metrics_);
  }

  // Copies trainer output until mpirun exits, handling signals and a lost service. Returns the
  // exit code the trainers' outcome calls for.
  int supervise() {
    std::optional<Clock::time_point> service_loss_deadline;
    std::optional<Clock::time_point> hard_stop_deadline;
    std::optional<Clock::time_point> stop_deadline;        // the graceful stop's
    std::optional<Clock::time_point> escalation_deadline;  // rank 0's overdue checkpoint's
    const auto& distributed = config_.distributed();
    while (mpirun_.running()) {
      pollfd watched[2] = {{signals_.fd(), POLLIN, 0}, {mpirun_.output_fd(), POLLIN, 0}};
      const int ready = ::poll(watched, output_open_ ? 2 : 1, 200);
      if (ready > 0 && output_open_ && (watched[1].revents & (POLLIN | POLLHUP))) copy_output();
      for (int number : signals_.take()) {
        if (++signals_received_ == 1) {
          first_signal_ = number;
          say("signal " + std::to_string(number) +
              ": asking the trainers to stop at the next step with a checkpoint (signal again to "
              "stop at once)");
          mpirun_.signal(SIGUSR1);  // mpirun forwards SIGUSR1 to every rank
          stop_deadline = after(distributed.stop_grace_seconds());
        } else if (!hard_stopped_) {
          say("signal " + std::to_string(number) + " again: stopping the trainers at once");
          hard_stop_trainers();
          hard_stop_deadline = after(kKillSeconds);
        }
      }
      reap_children({&service_, &mpirun_});
      report_resume();
      if (service_restarting_) {
        try {
          if (service_ready(service_ready_deadline_)) {
            service_restarting_ = false;
            awaiting_resume_ = true;
          }
        } catch (const LaunchError& failure) {
          say(failure.what());
          service_restarting_ = false;  // a dead service again: restarted or fatal below
        }
      }
      kill_hung_service();
      if (!service_.running() && !service_loss_deadline && !service_restarting_ && may_restart()) {
        restart_service_in_place();
      } else if (!service_.running() && !service_loss_deadline && !service_restarting_) {
        service_failed_ = true;
        const double timeout = config_.data().service_timeout_seconds();
        say("the data service (pid " + std::to_string(service_.pid()) + ") " +
            describe_wait_status(service_.wait_status()) +
            " while the trainers ran; they stop within data.service_timeout_seconds (" +
            std::to_string(static_cast<int>(timeout)) + " s). Its log " + service_log_ +
            " ends:\n" + last_lines(service_log_, 10));
        service_loss_deadline = after(timeout + kServiceLossMarginSeconds);
      }
      if (service_loss_deadline && Clock::now() > *service_loss_deadline && !hard_stopped_) {
        say("the trainers still run long after the data service ended: stopping them");
        hard_stop_trainers();
        hard_stop_deadline = after(kKillSeconds);
      }
      if (stop_deadline && !escalation_deadline && !hard_stopped_ &&
          Clock::now() > *stop_deadline) {
        say("the trainers have not stopped " + seconds_text(distributed.stop_grace_seconds()) +
            " after the request (distributed.stop_grace_seconds): asking rank 0 for a checkpoint "
            "of its last completed step; every process of the job ends within " +
            seconds_text(distributed.stop_checkpoint_seconds()));
        mpirun_.signal(SIGUSR2);  // forwarded to every rank; rank 0 acts on it
        escalation_deadline = after(distributed.stop_checkpoint_seconds());
      }
      if (escalation_deadline && !hard_stopped_ && Clock::now() > *escalation_deadline) {
        say("the trainers still run " + seconds_text(distributed.stop_checkpoint_seconds()) +
            " later (distributed.stop_checkpoint_seconds): killing them");
        hard_stop_trainers();
        hard_stop_deadline = after(kKillSeconds);
      }
      if (hard_stop_deadline && Clock::now() > *hard_stop_deadline) {
        mpirun_.signal(SIGKILL);
      }
    }
    // Ranks that outlived mpirun (e.g. killed mpirun, a rank ignoring the teardown) hold the
    // output pipe open: end them before reading it to its end.
    if (kill_descendants(SIGKILL, service_.running() ? service_.pid() : -1) > 0) {
      say("killed trainer processes that outlived mpirun");
    }
    const auto drain_deadline = after(2);
    while (output_open_ && Clock::now() < drain_deadline) {
      pollfd output{mpirun_.output_fd(), POLLIN, 0};
      if (::poll(&output, 1, 100) > 0) copy_output();
    }
    const int status = mpirun_.wait_status();
    const int trainers_code = exit_code_of(status);
    if (hard_stopped_ && signals_received_ > 1) return hds::common::kExitSignalBase + first_signal_;
    // An escalated stop ends with the checkpoints intact, the last one rank 0's if it could.
    if (trainers_code == kExitStopped || escalation_deadline) return kExitStopped;
    if (trainers_code != 0) {
      // mpirun exits 128 + N when it saw a rank die of signal N.
      const int rank_signal = trainers_code - hds::common::kExitSignalBase;
      const std::string rank_death = WIFEXITED(status) && rank_signal > 0
                                         ? ": a rank was killed by signal " +
                                               std::to_string(rank_signal) + " (" +
                                               strsignal(rank_signal) + ")"
                                         : "";
      say("the trainers failed: mpirun " + describe_wait_status(status) + rank_death + " (see " +
          trainer_log_path_ + (service_failed_ ? " and " + service_log_ : std::string()) + ")");
      return trainers_code;
    }
    return service_failed_ ? kExitLaunchFailed : 0;
  }

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

  // Kills every rank (mpirun's descendants) and mpirun with SIGKILL.
  void hard_stop_trainers() {
    hard_stopped_ = true;
    for (pid_t pid : descendants_of(mpirun_.pid())) ::kill(pid, SIGKILL);
    mpirun_.signal(SIGKILL);
  }

  // Signal `number` to every process of the job but `spared` and its descendants; how many got it.
  int kill_descendants(int number, pid_t spared) {
    return kill_descendants_except(number, spared, {&service_, &mpirun_}, kKillSeconds);
  }

  // Stops the service and removes what the job left; false when the service had to be killed or
  // ended with an error.
  bool tear_down() {
    const bool clean = stop_attempt();
    remove_job_files();
    return clean;
  }

  // Stops the service and every process of the attempt, and removes the rings, the socket and
  // the shared-memory segments they left; false as tear_down.
  bool stop_attempt() {
    bool clean = true;
    if (service_.running()) {
      service_.signal(SIGTERM);  // it ends its sessions, removes rings and socket, exits 0
      if (!service_.wait_for(kServiceStopSeconds)) {
        say("the data service did not stop within " +
            std::to_string(static_cast<int>(kServiceStopSeconds)) + " s of SIGTERM: killed");
        service_.signal(SIGKILL);
        service_.wait_for(kKillSeconds);
        clean = false;
      } else if (service_.wait_status() != 0) {
        say("the data service " + describe_wait_status(service_.wait_status()) +
            " on stopping; see " + service_log_);
        clean = false;
      }
    }
    if (kill_descendants(SIGKILL, -1) > 0) say("killed processes of the job that were still alive");
    remove_attempt_leftovers();
    return clean;
  }

  void remove_attempt_leftovers() {
    for (const std::string& ring : leftover_rings(job_id_)) {
      say("removing ring " + ring + " left behind");
      ::unlink(ring.c_str());
    }
    struct stat status {};
    if (!socket_path_.empty() && lstat(socket_path_.c_str(), &status) == 0 &&
        S_ISSOCK(status.st_mode)) {
      ::unlink(socket_path_.c_str());
    }
    if (!segment_directory_.empty()) {
      std::error_code error;
      for (const auto& segment : fs::directory_iterator(segment_directory_, error)) {
        fs::remove_all(segment.path(), error);
      }
    }
  }

  // What lives as long as the job: the targets file, the socket and segment directories.
  void remove_job_files() {
    remove_attempt_leftovers();
    if (!targets_file_.empty()) {
      ::unlink(targets_file_.c_str());
      targets_file_.clear();
    }
    if (!socket_directory_.empty()) {
      ::rmdir(socket_directory_.c_str());
      socket_directory_.clear();
    }
    if (!segment_directory_.empty()) {
      std::error_code error;
      fs::remove_all(segment_directory_, error);
      segment_directory_.clear();
    }
  }

  void print_report(int code) {
    const fs::path checkpoints = fs::path(output_dir_) / "checkpoints";
    const fs::path summary = fs::path(output_dir_) / "summary.json";
    std::error_code error;
    const fs::path latest = fs::read_symlink(checkpoints / "latest", error);
    std::string verdict = code == 0 ? "finished"
                          : code == kExitStopped
                              ? "stopped with a checkpoint (exit " + std::to_string(code) + ")"
                              : "failed (exit " + std::to_string(code) + ")";
    report_ << "hds-launch: job " << job_id_ << " " << verdict << "\n"
            << "  checkpoints: " << checkpoints.string()
            << (error ? std::string(" (none written)")
                      : " (latest: " + latest.filename().string() + ")")
            << "\n";
    if (fs::exists(summary)) report_ << "  summary:     " << summary.string() << "\n";
    report_ << "  metrics:     " << metrics_ << "\n"
            << "  trainer log: " << trainer_log_path_ << "\n"
            << "  service log: " << service_log_ << "\n";
    if (code == kExitStopped) {
      report_ << "  resume with: hds-launch local --config " << shell_quote(options_.config_path)
              << " --np " << options_.ranks << " --resume auto (and the same --set options)\n";
    }
    report_.flush();
  }

  const LocalLaunchOptions& options_;
  std::ostream& trainer_output_;
  std::ostream& messages_;
  std::ostream& report_;
  const hds::config::Config config_;
  const std::string config_path_;
  const std::string output_dir_;
  const std::string service_log_;
  const std::string trainer_log_path_;
  const std::string job_id_;
  const std::string metrics_;  // where the ranks serve their metrics
  std::string socket_path_;
  std::string socket_directory_;   // ours to remove; "" when --socket was given
  std::string segment_directory_;  // Open MPI's shared memory; ours to remove
  std::string targets_file_;       // the job's Prometheus file-SD targets; ours to remove
  // Held from the constructor on; released last, after the tear-down.
  std::optional<JobLock> lock_;
  uintmax_t ready_offset_ = 0;
  std::ofstream trainer_log_;
  std::string log_pending_;  // the trainers' output not yet a whole line
  SignalPipe signals_;
  Process service_;
  Process mpirun_;
  bool output_open_ = true;
  int signals_received_ = 0;
  int first_signal_ = 0;
  bool hard_stopped_ = false;
  bool service_failed_ = false;
  int restarts_ = 0;
  std::string restart_text_;          // "restart 2/3"
  double attempt_started_at_ = 0;     // Unix time the current attempt's ranks were started
  Clock::time_point restart_began_;   // when the last restart was decided
  int64_t steps_before_restart_ = 0;  // steps the failed attempt had done
  bool awaiting_resume_ = false;      // the last restart's report is still to come
  bool restarted_in_place_ = false;   // the last restart was the service's alone
  bool service_restarting_ = false;   // a restarted service is loading
  Clock::time_point service_ready_deadline_;
  double next_hang_check_ = 0;     // Unix time of the next look for a hung service
  double service_started_at_ = 0;  // Unix time the current service was started
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

int run_local(const LocalLaunchOptions& options, std::ostream& trainer_output,
              std::ostream& messages, std::ostream& report) {
  LocalJob job(options, trainer_output, messages, report);
  return job.run();
}

}  // namespace hds::launch

#include "hds/launch/supervisor.h"

#include <signal.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>

#include "hds/common/exit_codes.h"
#include "hds/common/rank_progress.h"
#include "hds/common/read_file.h"
#include "hds/launch/process.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// How long the data services may take to stop on SIGTERM (they end their sessions and remove
// their rings).
constexpr double kServiceStopSeconds = 30;
// After a service dies the ranks notice within data.service_timeout_seconds and exit; past that
// and this margin the supervisor kills them.
constexpr double kServiceLossMarginSeconds = 20;
constexpr int kPollMilliseconds = 200;
// How often the progress table is read for a hung service.
constexpr double kHangCheckSeconds = 0.5;

Clock::time_point after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string seconds_text(double seconds) {
  std::ostringstream text;
  text << seconds << " s";
  return text.str();
}

std::string signal_name(int number) {
  const char* abbreviation = sigabbrev_np(number);
  return abbreviation ? std::string("SIG") + abbreviation : "signal " + std::to_string(number);
}

// A signal ended the launch while the services loaded.
struct StoppedBySignal {
  int number;
};

enum class Phase {
  training,
  stopping,      // SIGUSR1 sent; waiting stop_grace_seconds
  stop_overdue,  // SIGUSR2 sent; waiting stop_checkpoint_seconds
  killing,       // every rank killed
};

enum class Services {
  up,       // ready, or running
  loading,  // started again in place, not ready yet
  lost,     // ended for good: the ranks are given time to notice
};

class Supervisor {
 public:
  Supervisor(const JobPolicy& policy, JobBackend& backend, hds::common::CaughtSignals& signals,
             JobMessages& messages)
      : policy_(policy),
        backend_(backend),
        signals_(signals),
        messages_(messages),
        ready_dir_((fs::path(policy.output_dir) / (".ready-" + policy.job_id)).string()),
        progress_dir_(hds::common::progress_table_dir(policy.output_dir)) {}

  int run() {
    restarts_ = restarts_done();
    int code = hds::common::kExitError;
    bool stopped_before_training = false;
    try {
      start_attempt(/*resume_auto=*/false);
      code = watch_attempt();
      for (std::string failure; !(failure = restartable_failure(code)).empty();) {
        if (restarts_ >= policy_.max_restarts) {
          if (policy_.max_restarts > 0) {
            say("no restart left (--max-restarts " + std::to_string(policy_.max_restarts) +
                ") after " + failure);
          }
          break;
        }
        if (restart(failure)) return hds::common::kExitStopped;  // requeued: comes back later
        code = watch_attempt();
      }
    } catch (const StoppedBySignal& stop) {
      say("stopped by " + signal_name(stop.number) + " before the trainers started");
      code = hds::common::kExitSignalBase + stop.number;
      stopped_before_training = true;
    } catch (const LaunchError& failure) {
      say(failure.what());
      code = hds::common::kExitError;
    }
    const bool clean = end_attempt();
    // Stopped with its checkpoints intact: where a scheduler can, it runs the job again.
    if ((code == hds::common::kExitStopped || stopped_before_training) && backend_.requeue()) {
      return hds::common::kExitStopped;
    }
    return !clean && code == 0 ? hds::common::kExitError : code;
  }

 private:
  void say(const std::string& line) { messages_.say(line); }

  // ---- restarts

  int restarts_done() const {
    if (policy_.restarts_file.empty()) return 0;
    int done = 0;
    std::ifstream(policy_.restarts_file) >> done;
    return done;
  }

  // Counts one restart; the text messages give it ("restart 2/3").
  void count_restart() {
    ++restarts_;
    restart_text_ =
        "restart " + std::to_string(restarts_) + "/" + std::to_string(policy_.max_restarts);
    if (!policy_.restarts_file.empty()) {
      try {
        hds::common::replace_file(policy_.restarts_file, std::to_string(restarts_) + "\n");
      } catch (const hds::common::FileWriteError& error) {
        say(std::string("warning: the restart count is not kept: ") + error.what());
      }
    }
  }

  // A restart left and no stop asked for.
  bool may_restart() const { return restarts_ < policy_.max_restarts && signals_received_ == 0; }

  // What failed in the attempt that just ended, when a new start can mend it; "" otherwise (the
  // run finished, was stopped on request, or met an error that would come again).
  std::string restartable_failure(int code) const {
    if (signals_received_ > 0) return "";
    if (service_failed_) return backend_.describe_services_end();
    if (!hds::common::is_restartable(code)) return "";
    return "the trainers exited with status " + std::to_string(code) + ": " +
           describe_rank_failure(code);
  }

  // The most steps any rank of the attempt begun at `since` had finished.
  int64_t steps_done_since(double since) const {
    return hds::common::most_steps_done(
        hds::common::ProgressTable(progress_dir_), policy_.ranks,
        [since](const hds::common::RankProgress& record) { return record.written_at >= since; });
  }

  // Ends the failed attempt and starts the job again from its latest checkpoint: here, or by the
  // scheduler (true: the job leaves now and comes back).
  bool restart(const std::string& failure) {
    count_restart();
    const int64_t done = steps_done_since(attempt_started_at_);
    say(restart_text_ + " after " + failure + " (" + std::to_string(done) +
        " steps done): stopping everything and starting again from the latest checkpoint");
    if (!end_attempt()) say("the failed attempt did not stop cleanly (see above); going on");
    if (backend_.requeue()) return true;
    restart_began_ = Clock::now();
    steps_before_restart_ = done;
    awaiting_resume_ = true;
    restarted_in_place_ = false;
    start_attempt(/*resume_auto=*/true);
    return false;
  }

  // ---- one attempt

  void start_attempt(bool resume_auto) {
    start_services();
    wait_until_ready();
    attempt_started_at_ = hds::common::unix_seconds();
    service_failed_ = false;
    services_ = Services::up;
    backend_.start_ranks(resume_auto);
  }

  // Every service of a new attempt.
  void start_services() {
    std::error_code error;
    fs::remove_all(ready_dir_, error);
    fs::create_directories(ready_dir_, error);
    if (error) throw LaunchError("cannot create " + ready_dir_ + ": " + error.message());
    announced_ready_.clear();
    backend_.start_services(ready_dir_);
    services_started_at_ = hds::common::unix_seconds();
  }

  // Until every service has written its ready file; a signal, a service that ends first or the
  // ready timeout end the launch.
  void wait_until_ready() {
    const auto deadline = after(policy_.ready_timeout_seconds);
    while (!services_ready(deadline)) {
      backend_.wait(signals_.fd(), 50);
      if (const std::vector<int> numbers = signals_.take(); !numbers.empty()) {
        ++signals_received_;
        throw StoppedBySignal{numbers.front()};
      }
    }
  }

  // True once every service has written its ready file (said with each one's socket); throws
  // LaunchError when one ended first or `deadline` passed.
  bool services_ready(Clock::time_point deadline) {
    std::vector<fs::path> ready;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(ready_dir_, error)) {
      // Written whole under a partial name first: only finished names count.
      if (entry.path().filename().string().find(".partial") == std::string::npos) {
        ready.push_back(entry.path());
      }
    }
    if (static_cast<int>(ready.size()) >= backend_.service_count()) {
      for (const fs::path& file : ready) {
        std::string key, socket;
        std::ifstream(file) >> key >> socket;
        // Said once per service: a restart in place leaves the others' files.
        if (announced_ready_.insert(file.string() + " " + socket).second) {
          say("data service ready: socket " + socket + " on " + file.filename().string());
        }
      }
      return true;
    }
    if (!backend_.services_running()) {
      throw LaunchError(backend_.describe_services_end() + " before it was ready; " +
                        backend_.service_logs(15));
    }
    if (Clock::now() > deadline) {
      throw LaunchError(std::to_string(ready.size()) + " of " +
                        std::to_string(backend_.service_count()) + " data service(s) ready after " +
                        seconds_text(policy_.ready_timeout_seconds) + " (--ready-timeout); " +
                        backend_.service_logs(15));
    }
    return false;
  }

  // Watches the ranks until they end; returns the exit code their outcome calls for.
  int watch_attempt() {
    phase_ = Phase::training;
    phase_deadline_ = Clock::time_point::max();
    escalated_ = false;
    while (backend_.ranks_running()) {
      backend_.wait(signals_.fd(), kPollMilliseconds);
      for (int number : signals_.take()) on_signal(number);
      report_resume();
      watch_services();
      advance_stop();
    }
    const int code = backend_.collect_ranks();
    if (phase_ == Phase::killing && signals_received_ > 1) {
      return hds::common::kExitSignalBase + first_signal_;
    }
    // An escalated stop ends with the checkpoints intact, the last one rank 0's if it could.
    if (code == hds::common::kExitStopped || escalated_) return hds::common::kExitStopped;
    if (code != 0) {
      say("the trainers failed: " + backend_.describe_ranks_end() + " (see " +
          backend_.trainer_log() + (service_failed_ ? " and the service logs above" : "") + ")");
      return code;
    }
    return service_failed_ ? hds::common::kExitError : 0;
  }

  void on_signal(int number) {
    if (++signals_received_ == 1) {
      first_signal_ = number;
      say(signal_name(number) +
          ": asking the trainers to stop with a checkpoint at the next step (signal again to "
          "stop at once)");
      backend_.signal_ranks(SIGUSR1);
      phase_ = Phase::stopping;
      phase_deadline_ = after(policy_.stop_grace_seconds);
    } else if (phase_ != Phase::killing) {
      say(signal_name(number) + " again: stopping the trainers at once");
      kill_ranks();
    }
  }

  void kill_ranks() {
    backend_.kill_ranks();
    phase_ = Phase::killing;
    phase_deadline_ = after(kKillSeconds);
  }

  // A stop that takes too long goes to its next stage.
  void advance_stop() {
    if (Clock::now() <= phase_deadline_) return;
    if (phase_ == Phase::stopping) {
      say("the trainers have not stopped " + seconds_text(policy_.stop_grace_seconds) +
          " after the request (distributed.stop_grace_seconds): asking rank 0 for a checkpoint "
          "of its last completed step; every process of the job ends within " +
          seconds_text(policy_.stop_checkpoint_seconds));
      backend_.signal_ranks(SIGUSR2);  // rank 0 acts on it
      escalated_ = true;
      phase_ = Phase::stop_overdue;
      phase_deadline_ = after(policy_.stop_checkpoint_seconds);
    } else if (phase_ == Phase::stop_overdue) {
      say("the trainers still run " + seconds_text(policy_.stop_checkpoint_seconds) +
          " later (distributed.stop_checkpoint_seconds): killing them");
      kill_ranks();
    } else if (phase_ == Phase::killing) {
      backend_.kill_ranks();  // again, for what the first kill missed
      phase_deadline_ = after(kKillSeconds);
    }
  }

  // ---- the services while the ranks run

  void watch_services() {
    if (services_ == Services::loading) watch_services_loading();
    kill_hung_services();
    if (services_ != Services::lost && !backend_.services_running()) {
      if (may_restart()) {
        restart_services_in_place();
      } else {
        service_failed_ = true;
        services_ = Services::lost;
        say(backend_.describe_services_end() +
            " while the trainers ran; they stop within data.service_timeout_seconds (" +
            seconds_text(policy_.service_timeout_seconds) + "); " + backend_.service_logs(10));
        service_loss_deadline_ = after(policy_.service_timeout_seconds + kServiceLossMarginSeconds);
      }
    }
    if (services_ == Services::lost && phase_ != Phase::killing &&
        Clock::now() > service_loss_deadline_) {
      say("the trainers still run long after the data service ended: stopping them");
      kill_ranks();
    }
  }

  // A service started again in place: ready (the ranks reconnect), or dead again.
  void watch_services_loading() {
    try {
      if (services_ready(service_ready_deadline_)) {
        say(restart_text_ + ": " + restarted_services_ + " ready again");
        services_ = Services::up;
        awaiting_resume_ = true;
      }
    } catch (const LaunchError& failure) {
      say(failure.what());
      backend_.kill_services();  // a timeout leaves one running: dead, it is restarted or fatal
      services_ = Services::up;
    }
  }

  // With restarts on, a service that a rank has declared lost (silent past
  // data.service_timeout_seconds: it waits for a new one) while the process lives is hung
  // (stopped, deadlocked): killed, so that it is restarted in place. One rank is enough: the
  // others may still hold batches, then wait for that rank in a collective.
  void kill_hung_services() {
    if (policy_.max_restarts == 0 || services_ != Services::up) return;
    const double now = hds::common::unix_seconds();
    if (now < next_hang_check_) return;
    next_hang_check_ = now + kHangCheckSeconds;
    if (!backend_.services_running()) return;
    const hds::common::ProgressTable table(progress_dir_);
    for (int rank = 0; rank < policy_.ranks; ++rank) {
      const auto record = table.read(rank);
      // Lost since these services started: not a loss of the ones they replaced.
      if (record && record->activity == hds::common::RankActivity::reconnecting &&
          record->written_at - record->activity_seconds > services_started_at_) {
        const std::string service = backend_.kill_service_of(rank);
        say("rank " + std::to_string(rank) + " has lost " + service +
            ", which still runs: it is hung; killed");
        return;
      }
    }
  }

  // Services died while the ranks run: new ones start on the same sockets (the others go on
  // serving); the ranks wait for them (data.service_reconnect_seconds) and ask for the batch due.
  void restart_services_in_place() {
    count_restart();
    say(restart_text_ + ": " + backend_.describe_services_end() +
        " while the trainers ran: restarting in place (the ranks wait and go on from the batch "
        "due); " +
        backend_.service_logs(10));
    restart_began_ = Clock::now();
    steps_before_restart_ = steps_done_since(attempt_started_at_);
    restarted_in_place_ = true;
    const std::vector<std::string> started = backend_.start_services(ready_dir_);
    restarted_services_ = join(started, " and ") + (started.size() > 1 ? " are" : " is");
    services_started_at_ = hds::common::unix_seconds();
    service_ready_deadline_ = after(policy_.ready_timeout_seconds);
    services_ = Services::loading;
  }

  // After a restart: once rank 0's record shows the ranks training again, how long that took
  // and how many steps were redone.
  void report_resume() {
    if (!awaiting_resume_) return;
    const auto record = hds::common::ProgressTable(progress_dir_).read(0);
    if (!record || record->written_at < attempt_started_at_ || record->resumed_from < 0 ||
        record->epoch == 0) {
      return;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - restart_began_).count();
    const int64_t steps = hds::common::completed_steps(*record);
    if (restarted_in_place_) {
      // The ranks kept their state: back once a step beyond the failure is done.
      if (steps <= steps_before_restart_) return;
      awaiting_resume_ = false;
      say(restart_text_ + ": training again " + seconds_text(seconds) +
          " after the failure, at global step " + std::to_string(steps) + ": 0 steps redone");
      return;
    }
    awaiting_resume_ = false;
    say(restart_text_ + ": training again " + seconds_text(seconds) +
        " after the failure, resumed at global step " + std::to_string(record->resumed_from) +
        ": " + std::to_string(std::max<int64_t>(0, steps_before_restart_ - record->resumed_from)) +
        " steps redone");
  }

  // Stops the services and every process of the attempt and removes what they left; false
  // when a service had to be killed or failed.
  bool end_attempt() {
    const bool clean = backend_.stop_services(kServiceStopSeconds);
    backend_.end_attempt();
    std::error_code error;
    fs::remove_all(ready_dir_, error);
    return clean;
  }

  const JobPolicy& policy_;
  JobBackend& backend_;
  hds::common::CaughtSignals& signals_;
  JobMessages& messages_;
  const std::string ready_dir_;
  const std::string progress_dir_;

  Phase phase_ = Phase::training;
  Clock::time_point phase_deadline_ = Clock::time_point::max();
  bool escalated_ = false;  // rank 0 was asked for its last completed step's checkpoint
  int signals_received_ = 0;
  int first_signal_ = 0;

  Services services_ = Services::up;
  bool service_failed_ = false;  // a service ended for good while the ranks ran
  double services_started_at_ = 0;
  Clock::time_point service_ready_deadline_;
  Clock::time_point service_loss_deadline_;
  double next_hang_check_ = 0;

  int restarts_ = 0;
  std::string restart_text_;          // "restart 2/3"
  double attempt_started_at_ = 0;     // Unix time the attempt's ranks were started
  Clock::time_point restart_began_;   // when the last restart was decided
  int64_t steps_before_restart_ = 0;  // steps the failed attempt had done
  bool awaiting_resume_ = false;      // the last restart's report is still to come
  bool restarted_in_place_ = false;   // the last restart was the services' alone
  std::string restarted_services_;    // "the data service on node2 is": what restarted in place
  std::set<std::string> announced_ready_;  // ready files (and sockets) said this attempt
};

}  // namespace

JobPolicy job_policy(const hds::config::Config& config, const std::string& job_id, int ranks,
                     int max_restarts) {
  JobPolicy policy;
  policy.job_id = job_id;
  policy.output_dir = absolute_output_dir(config);
  policy.ranks = ranks;
  policy.stop_grace_seconds = config.distributed().stop_grace_seconds();
  policy.stop_checkpoint_seconds = config.distributed().stop_checkpoint_seconds();
  policy.service_timeout_seconds = config.data().service_timeout_seconds();
  policy.max_restarts = max_restarts;
  return policy;
}

void print_job_report(std::ostream& out, const JobReport& report, int code) {
  const fs::path checkpoints = fs::path(report.output_dir) / "checkpoints";
  const fs::path summary = fs::path(report.output_dir) / "summary.json";
  std::error_code error;
  const fs::path latest = fs::read_symlink(checkpoints / "latest", error);
  const std::string verdict = code == 0 ? "finished"
                              : code == hds::common::kExitStopped
                                  ? "stopped with a checkpoint (exit " + std::to_string(code) + ")"
                                  : "failed (exit " + std::to_string(code) + ")";
  out << "hds-launch: job " << report.job_id << " " << verdict
      << "; summary, checkpoints and logs:\n"
      << "  checkpoints: " << checkpoints.string()
      << (error ? std::string(" (none written)") : " (latest: " + latest.filename().string() + ")")
      << "\n";
  if (fs::exists(summary)) out << "  summary:     " << summary.string() << "\n";
  out << "  metrics:     " << report.metrics << "\n"
      << "  trainer log: " << report.trainer_log << "\n"
      << "  service log: " << report.service_log << "\n";
  if (!report.resume_hint.empty()) out << "  resume with: " << report.resume_hint << "\n";
  out.flush();
}

void JobMessages::say(const std::string& line) {
  out_ << "hds-launch";
  if (timestamps_) {
    const std::time_t now = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, " %Y-%m-%d %H:%M:%S", std::localtime(&now));
    out_ << text;
  }
  out_ << ": " << line << std::endl;
}

int supervise_job(const JobPolicy& policy, JobBackend& backend, hds::common::CaughtSignals& signals,
                  JobMessages& messages) {
  return Supervisor(policy, backend, signals, messages).run();
}

}  // namespace hds::launch

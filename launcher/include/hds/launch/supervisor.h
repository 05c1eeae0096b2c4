// The policy of a training job, written once for every place it runs: `hds-launch local` (one
// machine: a data service process and mpirun) and `hds-launch slurm-run` (what the Slurm batch
// script runs on the job's first node: srun steps). Like torchrun's elastic agent, the supervisor
// decides and a backend carries out:
//
//   loading    the data service(s) load their dataset; each writes a ready file once it listens
//              (hds-data-service serve --ready-file); a service that exits first, the ready
//              timeout or a signal ends the job.
//   training   the ranks run. A service that dies is started again in place, alone, while
//              restarts are left (the ranks wait for it; the other nodes' go on serving), else the
//              ranks get data.service_timeout_seconds to notice and a margin before they are
//              killed. A service a rank has declared lost while it still runs is hung: killed, then
//              restarted the same way.
//   stopping   the first signal: SIGUSR1 to every rank (they agree on a step, rank 0 writes a
//              checkpoint, they exit 75). After distributed.stop_grace_seconds:
//   overdue    SIGUSR2 to every rank (rank 0 writes its last completed step's checkpoint); after
//              distributed.stop_checkpoint_seconds:
//   killing    every rank killed. A second signal goes here at once.
//
// When the ranks end, a failure a new start can mend (hds::common::is_restartable, or a lost
// service) starts the job again from its latest checkpoint while restarts are left: here, or by
// the scheduler (JobBackend::requeue); a stop with a checkpoint is requeued the same way where
// there is a scheduler. Whatever ends the job, the services are stopped and everything the job
// left is removed.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "hds/common/signals.h"
#include "hds/config/config.h"

namespace hds::launch {

// What the policy needs to know of the job.
struct JobPolicy {
  std::string job_id;                  // for messages; names the rings
  std::string output_dir;              // absolute: the progress table, checkpoints, summary
  int ranks = 1;                       // in all
  double ready_timeout_seconds = 300;  // for the services' dataset load
  double stop_grace_seconds = 0;       // distributed.stop_grace_seconds
  double stop_checkpoint_seconds = 0;  // distributed.stop_checkpoint_seconds
  double service_timeout_seconds = 0;  // data.service_timeout_seconds
  int max_restarts = 0;
  // "": restarts are counted in memory; else in this file, so that the count survives a requeue.
  std::string restarts_file;
};

// Where a launcher says what happens to its job: "hds-launch: LINE", with the time after the
// name where asked (a batch job's output has no other clock).
class JobMessages {
 public:
  JobMessages(std::ostream& out, bool timestamps) : out_(out), timestamps_(timestamps) {}
  void say(const std::string& line);
  std::ostream& stream() { return out_; }

 private:
  std::ostream& out_;
  bool timestamps_;
};

// The policy of a job of `config` with `ranks` ranks in all: its output folder, stop stages and
// service timeout from the configuration; the rest at JobPolicy's defaults.
JobPolicy job_policy(const hds::config::Config& config, const std::string& job_id, int ranks,
                     int max_restarts);

// How a job's processes are started, watched and stopped where it runs. Mechanics only: every
// decision is the supervisor's. Calls come from one thread.
class JobBackend {
 public:
  virtual ~JobBackend() = default;

  // Starts the data services that are not running: every one for a new attempt, the ones that
  // ended for a restart in place. Each writes one file into `ready_dir` once it listens (the
  // file a service that ended left there is removed first). Returns how messages name the
  // services started: {"the data service on node2"}.
  virtual std::vector<std::string> start_services(const std::string& ready_dir) = 0;
  virtual int service_count() const = 0;
  // Reaps; false once a service (or the step that runs it) has ended.
  virtual bool services_running() = 0;
  // How the ended ones ended: "the data service (pid 12) was killed by signal 9 (Killed)".
  virtual std::string describe_services_end() const = 0;
  // Where the services' logs are and how they end, for messages: "its log PATH ends:\n...".
  virtual std::string service_logs(int lines) const = 0;
  // Kills every service at once (one that never got ready again).
  virtual void kill_services() = 0;
  // Kills, at once, the service that serves rank `rank` (it hangs); returns how messages name it.
  virtual std::string kill_service_of(int rank) = 0;
  // SIGTERM (a service then removes its rings and socket), up to `seconds` to end, then
  // SIGKILL; false (with the reason said) when one had to be killed or failed.
  virtual bool stop_services(double seconds) = 0;

  // Starts every trainer rank; `resume_auto` for a new start after a failure.
  virtual void start_ranks(bool resume_auto) = 0;
  // Reaps; false once the ranks (their mpirun or srun) have ended.
  virtual bool ranks_running() = 0;
  // Sends `number` to every rank (SIGUSR1: stop; SIGUSR2: the stop is overdue).
  virtual void signal_ranks(int number) = 0;
  virtual void kill_ranks() = 0;
  // Once ranks_running() is false: ends ranks that outlived their launcher, takes the rest of
  // their output, returns the trainers' exit code.
  virtual int collect_ranks() = 0;
  // How they ended: "mpirun exited with status 137: a rank was killed by signal 9 (Killed)".
  virtual std::string describe_ranks_end() const = 0;
  // Where the trainers' output is, for messages.
  virtual std::string trainer_log() const = 0;

  // Waits up to `milliseconds` for `signal_fd` to become readable, meanwhile doing the
  // backend's own work (passing the trainers' output on).
  virtual void wait(int signal_fd, int milliseconds) = 0;
  // Kills whatever process of the attempt is still alive and removes what the processes left
  // (rings, sockets, shared-memory segments).
  virtual void end_attempt() = 0;
  // Has a scheduler run the job again from its latest checkpoint (Slurm's requeue) and says so;
  // false where there is none.
  virtual bool requeue() = 0;
};

// Runs the job to its end: returns the launcher's exit code (the trainers', 75 when stopped with
// a checkpoint or requeued, 1 when a service failed, 128 + N when a second signal N stopped it
// at once).
int supervise_job(const JobPolicy& policy, JobBackend& backend, hds::common::CaughtSignals& signals,
                  JobMessages& messages);

// Where a job's results are, for its closing lines.
struct JobReport {
  std::string job_id;
  std::string output_dir;   // absolute
  std::string metrics;      // where the ranks served their metrics
  std::string trainer_log;  // the trainers' output
  std::string service_log;  // the data services' (a path or a pattern)
  std::string resume_hint;  // "" or the command line that goes on from the checkpoint
};

// "hds-launch: job J finished; summary, checkpoints and logs:" (or "stopped with a
// checkpoint (exit 75)", "failed (exit N)"), then one line for each.
void print_job_report(std::ostream& out, const JobReport& report, int code);

}  // namespace hds::launch

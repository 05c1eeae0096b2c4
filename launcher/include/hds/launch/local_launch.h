// `hds-launch local`: one machine, N trainer ranks under mpirun, fed by one data service.
//
// The job's policy (readiness, stops and their escalation, restarts, clean-up) is the
// supervisor's (supervisor.h); this is its local backend: `hds-data-service serve` as a child
// (log: <output_dir>/data-service.log), `mpirun -np N hds-trainer fit` with the service's socket
// and job id (output: the terminal and <output_dir>/trainer.log, the latter without the progress
// bar's redraws). mpirun forwards the supervisor's SIGUSR1 and SIGUSR2 to every rank. The job id
// is locked for the launch's life (job_lock.h); the socket folder, Open MPI's segment folder and
// the Prometheus targets file are the launch's, removed at its end. The launcher adopts orphaned
// ranks as their subreaper, so none outlives it, and prints where the checkpoints, the summary
// and the logs are.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "hds/common/exit_codes.h"

namespace hds::launch {

struct LocalLaunchOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set a.b=v, for the service and the trainers
  int ranks = 1;
  std::string resume;  // "" (fresh), "auto" or a checkpoint directory
  std::string
      init_from;  // "" or a checkpoint directory: the first start's weights (fit's --init-from)
  std::string job_id;       // "" = default_job_id()
  std::string socket_path;  // "" = data.sock in a new private (0700) directory under /tmp
  // Absolute paths (see find_project_program / find_system_program).
  std::string data_service;
  std::string trainer;
  std::string mpirun;
  std::vector<std::string> mpirun_arguments;  // added before -np
  double ready_timeout_seconds = 300;         // for the service's dataset load
  // Rank 0's step progress: "bar", "lines", or "auto" (a bar when the launcher's output is a
  // terminal; trainer.log keeps whole lines either way).
  std::string progress = "auto";
  // After a failure that a new start can mend (hds::common::is_restartable, or the data service
  // died), stop everything, start the
  // service and the ranks again from the latest checkpoint, at most this many times.
  int max_restarts = 0;
};

// `hds-launch local` exits with the trainers' code (hds/common/exit_codes.h) or with these:
using hds::common::kExitStopped;  // stopped with a checkpoint (resume with --resume auto)
using hds::common::kExitUsage;    // bad command line or configuration
// The service failed or the launch could not start: an error like any other.
constexpr int kExitLaunchFailed = hds::common::kExitError;

// The mpirun command line that runs the trainers (exposed for tests and --dry-run): `cores`
// decides --oversubscribe; Open MPI's shared-memory segments and session directory go to
// `segment_directory` ("" = its defaults, /dev/shm and /tmp).
std::vector<std::string> mpirun_command(const LocalLaunchOptions& options,
                                        const std::string& socket_path, const std::string& job_id,
                                        int cores, const std::string& segment_directory);

// The cores mpirun counts as slots here: distinct (package, core) pairs among the CPUs this
// process may run on; hardware threads do not count.
int physical_cores();

// Runs the whole job; returns hds-launch's exit code. Progress and errors go to `messages`, the
// trainers' output to `trainer_output` (and the trainer log), the closing summary to `report`.
// Throws hds::config::ConfigError for a bad configuration and UsageError for bad options.
int run_local(const LocalLaunchOptions& options, std::ostream& trainer_output,
              std::ostream& messages, std::ostream& report);

}  // namespace hds::launch

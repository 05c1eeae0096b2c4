// `hds-launch local`: one machine, N trainer ranks under mpirun, fed by one data service.
//
// The launcher starts `hds-data-service serve` (log: <output_dir>/data-service.log), waits for
// its "ready: socket" line, then runs `mpirun -np N hds-trainer fit` with the service's socket and
// job id (output: the terminal and <output_dir>/trainer.log, the latter without the progress
// bar's redraws). Signals: the first SIGINT, SIGTERM or SIGHUP becomes a SIGUSR1 to mpirun, which
// forwards it to every rank: the ranks agree on a step, rank 0 writes a checkpoint, and they exit
// 75. A stop not done after distributed.stop_grace_seconds escalates: SIGUSR2 asks rank 0 for a
// checkpoint of its last completed step (it can while its main thread waits for the other
// ranks), and distributed.stop_checkpoint_seconds later every rank is killed; the job exits 75
// (resume from the latest checkpoint). A second signal kills the ranks and mpirun at once. With
// --max-restarts N a job whose rank died or hung, or whose data service died, is started again
// (service and ranks, --resume auto) up to N times; the log says what failed, which restart it is,
// and how many steps the restart redid (from the ranks' progress table).
// Whatever ends the job, the launcher stops the service, removes its socket and any ring it
// left, kills any process of the job still alive (it adopts orphaned ranks as their
// subreaper), and prints where the checkpoints, the summary and the logs are.
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

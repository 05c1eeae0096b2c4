// `hds-launch slurm-run`: a job's policy under Slurm. The batch script that `hds-launch sbatch`
// writes (deploy/slurm/hds-job.sbatch.in) execs it on the job's first node, so Slurm's signals to
// the batch shell (--signal=B:USR1@120, `scancel --batch`) reach it. The supervisor
// (supervisor.h) runs the job with this backend:
//
//   run       SLURM_RESTART_COUNT (0, then 1, ... after each requeue); the run's job id
//             slurm-<job>-<run> names its rings, so a requeued run gets fresh ones
//   services  one per node, each its own step (`srun --overlap --nodelist=NODE hds-data-service
//             serve`, so that one can be restarted alone) on the node-local socket
//             /tmp/hds-<job>-<run>/data.sock, logging to
//             <output_dir>/data-service-<job>-<run>-<node>.log and writing its ready file
//             <node> into the shared output folder
//   ranks     `srun --mpi=pmix --kill-on-bad-exit=1 hds-trainer fit --resume auto`; srun passes
//             SIGUSR1 and SIGUSR2 on to every rank; killing goes through `scancel` of the step
//   requeue   a stop with a checkpoint, and a restart (counted in <output_dir>/.restarts-<job>,
//             which survives requeues), end this run with `scontrol requeue`: the next run
//             resumes from the latest checkpoint
//
// Each run lists its nodes' ranks and services for Prometheus (prometheus_targets.h, with the
// Slurm job id) and removes the file when it ends; Open MPI's segments go to
// /dev/shm/hds-<job>-<run> on every node, removed with the rings and socket folders.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace hds::launch {

struct SlurmRunOptions {
  std::string config_path;  // the effective configuration the script names
  int ranks_per_node = 1;
  // Absolute paths of the programs the job runs.
  std::string data_service;
  std::string trainer;
  double ready_timeout_seconds = 600;
  int max_restarts = 0;
  std::string init_from;  // "" or the checkpoint a fresh run starts from
};

// What Slurm tells a batch job about itself (its environment).
struct SlurmAllocation {
  std::string job_id;              // SLURM_JOB_ID
  int run = 0;                     // SLURM_RESTART_COUNT, 0 when unset
  std::vector<std::string> nodes;  // SLURM_JOB_NODELIST, expanded, in rank order
};

// Reads SLURM_JOB_ID, SLURM_RESTART_COUNT and SLURM_JOB_NODELIST (expanded by `scontrol show
// hostnames`). Throws UsageError outside a Slurm job.
SlurmAllocation current_allocation(const std::string& scontrol);

// The command lines the backend runs (exposed for tests): the data service of node `node`, and
// the ranks, for run `allocation.run` with `socket` and `job_id`; `segments` (or "") is Open
// MPI's segment folder.
std::vector<std::string> slurm_service_command(const SlurmRunOptions& options,
                                               const std::string& srun, const std::string& socket,
                                               const std::string& job_id,
                                               const std::string& service_log_prefix,
                                               const std::string& ready_dir,
                                               const std::string& node);
std::vector<std::string> slurm_trainer_command(const SlurmRunOptions& options,
                                               const SlurmAllocation& allocation,
                                               const std::string& srun, const std::string& socket,
                                               const std::string& job_id,
                                               const std::string& segments);

// Runs the job's current run to its end; returns the exit code (75 when requeued).
int run_slurm(const SlurmRunOptions& options, std::ostream& messages);

}  // namespace hds::launch

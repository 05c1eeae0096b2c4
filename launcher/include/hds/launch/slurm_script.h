// `hds-launch sbatch`: a Slurm batch script for a data-parallel job, and its submission.
//
// The script is deploy/slurm/hds-job.sbatch.in (compiled in) with its fields filled: the #SBATCH
// lines (nodes, ranks per node, GPUs, `--signal=B:USR1@120` so that a run can checkpoint before
// its time limit, `--requeue`, `--open-mode=append`, the user's own options) and one
// `exec hds-launch slurm-run ...` that runs the job's policy (slurm_run.h). This file checks the
// options and writes; it decides nothing about how the job runs.
#pragma once

#include <string>
#include <vector>

namespace hds::launch {

struct SbatchOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set a.b=v, baked into the configuration copy
  int nodes = 1;
  int gpus_per_node = 0;
  int ranks_per_node = 0;                   // 0: gpus_per_node (required when that is 0)
  int cpus_per_task = 0;                    // 0: Slurm's default
  std::string partition;                    // "": the cluster's default
  std::string time;                         // "": the partition's default limit
  std::string job_name;                     // "": hds-<output folder name>
  std::vector<std::string> sbatch_options;  // more "#SBATCH" options, e.g. --account=proj
  std::string script_path;                  // "": <output_dir>/hds-job.sbatch
  // Absolute paths of the programs the job runs.
  std::string data_service;
  std::string trainer;
  std::string launcher;             // hds-launch: writes the job's Prometheus targets
  int ready_timeout_seconds = 600;  // for the services' dataset load
  // "" or a checkpoint directory: the weights a fresh run starts from (fit's --init-from; a
  // requeued run resumes its own checkpoint instead).
  std::string init_from;
  // After a rank dies or hangs or a data service dies (hds::common::is_restartable), requeue the
  // job to resume from its latest checkpoint, at most this many times per Slurm job (counted in
  // <output_dir>/.restarts-<job>; stops on request do not count).
  int max_restarts = 0;
};

// A validated job: where its files go and what they hold.
struct SbatchJob {
  std::string script_path;       // absolute
  std::string config_copy_path;  // the effective configuration, beside the script
  std::string output_dir;        // absolute; Slurm's output and the service logs go here too
  std::string config_text;
  std::string script_text;
  std::string metrics;  // where each node's trainer ranks serve their metrics, for messages
};

// Seconds before the time limit at which Slurm sends USR1 to the batch shell.
constexpr int kSlurmWarningSeconds = 120;

// Checks the options (UsageError naming the option and the fix) and the configuration
// (hds::config::ConfigError), and composes the script. Writes nothing.
SbatchJob prepare_sbatch_job(const SbatchOptions& options);

// Writes the configuration copy and the script (mode 0755), creating their folders and the
// output directory (Slurm does not create the folder of --output). Throws LaunchError.
void write_sbatch_job(const SbatchJob& job);

// Runs `sbatch --parsable SCRIPT`; returns the job id. Throws LaunchError with sbatch's message.
std::string submit_sbatch_job(const SbatchJob& job, const std::string& sbatch);

}  // namespace hds::launch

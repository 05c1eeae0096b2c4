// hds-launch: local | sbatch | slurm-run | cv | ablation | clean. Parses the command line and calls
// one function of hds/launch/commands.h per subcommand. Exit codes (hds/common/exit_codes.h): those
// of the trainers (0 finished, 1 error, 2 bad configuration, 3 non-finite loss, 75 stopped with a
// checkpoint), 1 when the launch itself fails, 2 for a bad command line or configuration,
// 128 + N when a second signal N stopped the job at once.
#include <CLI/CLI.hpp>
#include <iostream>

#include "hds/common/command_line.h"
#include "hds/common/exit_codes.h"
#include "hds/launch/commands.h"
#include "hds/launch/process.h"

namespace {

// A subcommand with the options both share: the configuration and the programs they run.
template <class Options>
CLI::App* add_job_command(CLI::App& app, const std::string& name, const std::string& description,
                          Options& options) {
  CLI::App* command = app.add_subcommand(name, description);
  hds::common::add_config_options(*command, options.config_path, options.overrides);
  command->add_option(
      "--data-service", options.data_service,
      "hds-data-service to run (default: $HDS_DATA_SERVICE, else beside hds-launch)");
  command->add_option("--trainer", options.trainer,
                      "hds-trainer to run (default: $HDS_TRAINER, else beside hds-launch)");
  return command;
}

void add_init_from_option(CLI::App& command, std::string& init_from) {
  command.add_option("--init-from", init_from,
                     "Start each run's schedule from this checkpoint's weights (hds-trainer fit "
                     "--init-from: fine-tuning); a run with a checkpoint of its own resumes it");
}

CLI::App* add_local_command(CLI::App& app, hds::launch::LocalCommand& arguments) {
  hds::launch::LocalLaunchOptions& options = arguments.options;
  CLI::App* local = add_job_command(
      app, "local", "Run a job on this machine: the data service and N trainer ranks under mpirun",
      options);
  local->add_option("--np", options.ranks, "Trainer ranks")->required()->check(CLI::Range(1, 4096));
  local->add_option("--resume", options.resume,
                    "auto (the run's latest checkpoint, if any) or a checkpoint directory");
  add_init_from_option(*local, options.init_from);
  local->add_option("--job-id", options.job_id,
                    "Names the rings: 1-64 of [A-Za-z0-9_-] (default: host-pid-time)");
  local->add_option("--socket", options.socket_path,
                    "Data service socket (default: data.sock in a new private directory in /tmp)");
  local->add_option("--mpirun", options.mpirun, "mpirun to use (default: $HDS_MPIRUN, else PATH)");
  local->add_option("--mpirun-arg", options.mpirun_arguments,
                    "Extra mpirun argument, repeatable: --mpirun-arg=--report-bindings");
  local
      ->add_option("--ready-timeout", options.ready_timeout_seconds,
                   "Seconds the data service may take to load the dataset")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  local
      ->add_option("--progress", options.progress,
                   "Rank 0's progress: bar (redrawn in place), lines, or auto (bar on a terminal)")
      ->check(CLI::IsMember({"auto", "bar", "lines"}))
      ->capture_default_str();
  local
      ->add_option("--max-restarts", options.max_restarts,
                   "After a rank dies or hangs or the data service dies, start again from the "
                   "latest checkpoint, at most this many times")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  local->add_flag("--dry-run", arguments.dry_run, "Print the mpirun command line and exit");
  return local;
}

CLI::App* add_sbatch_command(CLI::App& app, hds::launch::SbatchCommand& arguments) {
  hds::launch::SbatchOptions& options = arguments.options;
  CLI::App* sbatch = add_job_command(
      app, "sbatch", "Write a Slurm batch script for the job (and submit it with --submit)",
      options);
  sbatch->add_option("--nodes", options.nodes, "Nodes")->required();
  sbatch->add_option("--gpus-per-node", options.gpus_per_node, "GPUs per node (0: a CPU job)")
      ->required();
  sbatch->add_option("--ranks-per-node", options.ranks_per_node,
                     "Trainer ranks per node (default: --gpus-per-node; required for CPU jobs)");
  sbatch->add_option("--cpus-per-task", options.cpus_per_task, "CPUs per trainer rank");
  add_init_from_option(*sbatch, options.init_from);
  sbatch->add_option("--partition", options.partition, "Slurm partition");
  sbatch->add_option("--time", options.time, "Time limit: minutes, HH:MM:SS or D-HH:MM:SS");
  sbatch->add_option("--job-name", options.job_name,
                     "Slurm job name (default: hds-<output folder>)");
  sbatch->add_option("--sbatch-option", options.sbatch_options,
                     "Another #SBATCH option, repeatable: --sbatch-option=--account=proj");
  sbatch->add_option("--out", options.script_path,
                     "The script to write (default: <train.output_dir>/hds-job.sbatch)");
  sbatch
      ->add_option("--ready-timeout", options.ready_timeout_seconds,
                   "Seconds the data services may take to load the dataset")
      ->capture_default_str();
  sbatch
      ->add_option("--max-restarts", options.max_restarts,
                   "After a rank dies or hangs or a data service dies, requeue the job to resume "
                   "from the latest checkpoint, at most this many times")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  sbatch->add_flag("--submit", arguments.submit, "Submit the script with sbatch");
  sbatch->add_option("--sbatch", arguments.sbatch,
                     "sbatch to use (default: $HDS_SBATCH, else PATH)");
  return sbatch;
}

// `slurm-run`: what the batch script `sbatch` wrote execs on the job's first node.
CLI::App* add_slurm_run_command(CLI::App& app, hds::launch::SlurmRunOptions& options) {
  CLI::App* command = app.add_subcommand(
      "slurm-run",
      "Run a Slurm job's current run (the batch script hds-launch sbatch writes execs it)");
  command->add_option("--config", options.config_path, "The job's effective configuration")
      ->required();
  command->add_option("--ranks-per-node", options.ranks_per_node, "Trainer ranks per node")
      ->required()
      ->check(CLI::Range(1, 4096));
  command->add_option("--data-service", options.data_service, "hds-data-service to run")
      ->required();
  command->add_option("--trainer", options.trainer, "hds-trainer to run")->required();
  command
      ->add_option("--ready-timeout", options.ready_timeout_seconds,
                   "Seconds the data services may take to load the dataset")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--max-restarts", options.max_restarts,
                   "Requeues after a failure a new start can mend, per Slurm job")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  add_init_from_option(*command, options.init_from);
  return command;
}

// `cv` and `ablation`: several jobs of one configuration (experiments.h).
CLI::App* add_experiment_command(CLI::App& app, const std::string& name,
                                 const std::string& description,
                                 hds::launch::ExperimentOptions& options) {
  CLI::App* command = add_job_command(app, name, description, options);
  command->add_option("--np", options.ranks, "Trainer ranks per job")->capture_default_str();
  command->add_option("--parallel", options.parallel,
                      "Jobs at once (default: as the devices or cores allow)");
  command->add_option("--bootstrap", options.bootstrap_rounds, "Bootstrap resamples per evaluation")
      ->capture_default_str();
  command->add_option("--mpirun", options.mpirun,
                      "mpirun to use (default: $HDS_MPIRUN, else PATH)");
  add_init_from_option(*command, options.init_from);
  return command;
}

}  // namespace

// UsageError exits 2 with its message alone; any other failure of the launch exits 1.
hds::common::Failure classify(const std::exception& error) {
  if (dynamic_cast<const hds::launch::UsageError*>(&error) != nullptr) {
    return {hds::launch::kExitUsage, ""};
  }
  hds::common::Failure failure = hds::common::classify_failure(error);
  if (failure.exit_code == hds::common::kExitError)
    failure.exit_code = hds::launch::kExitLaunchFailed;
  return failure;
}

int main(int argc, char** argv) {
  CLI::App app{"hds-launch: run HDS training jobs on this machine (mpirun) or on Slurm"};
  hds::launch::LocalCommand local;
  CLI::App* local_command = add_local_command(app, local);
  hds::launch::SbatchCommand sbatch;
  CLI::App* sbatch_command = add_sbatch_command(app, sbatch);
  hds::launch::CrossValidationCommand cv;
  CLI::App* cv_command = add_experiment_command(
      app, "cv", "Cross-validate: train and evaluate every rotation of the folds, then Table 2",
      cv.options);
  cv_command->add_option("--folds", cv.folds, "Folds (data.folds)")->capture_default_str();
  cv_command->add_option("--rotations", cv.rotations, "Only these rotations (default: all)");
  hds::launch::AblationCommand ablation;
  CLI::App* ablation_command = add_experiment_command(
      app, "ablation", "Train and evaluate the four loss variants on one split, then Table 1",
      ablation.options);
  hds::launch::SlurmRunOptions slurm_run;
  CLI::App* slurm_run_command = add_slurm_run_command(app, slurm_run);
  CLI::App* clean_command = app.add_subcommand(
      "clean",
      "Remove what jobs on this machine whose hds-launch died left behind (rings, sockets, "
      "Open MPI folders, Prometheus targets); running jobs are not touched");
  hds::common::MainOptions options;
  options.program = "hds-launch";
  options.classify = classify;
  return hds::common::run_main(app, argc, argv, options, [&] {
    if (*local_command) return hds::launch::run_local_command(local, std::cout, std::cerr);
    if (*sbatch_command) hds::launch::run_sbatch_command(sbatch, std::cout);
    if (*slurm_run_command) return hds::launch::run_slurm(slurm_run, std::cerr);
    if (*clean_command) hds::launch::run_clean_command(std::cout);
    if (*cv_command) return hds::launch::run_cv_command(cv, std::cout, std::cerr);
    if (*ablation_command) return hds::launch::run_ablation_command(ablation, std::cout, std::cerr);
    return hds::common::kExitFinished;
  });
}

// hds-launch: local | sbatch. Thin: parses the command line and calls the hds_launch library.
// Exit codes: those of the trainers (0 finished, 1 error, 2 bad configuration, 3 non-finite loss,
// 75 stopped with a checkpoint), 1 when the launch itself fails, 2 for a bad command line or
// configuration, 128 + N when a second signal N stopped the job at once.
#include <CLI/CLI.hpp>
#include <iostream>

#include "hds/config/config.h"
#include "hds/launch/local_launch.h"
#include "hds/launch/process.h"
#include "hds/launch/slurm_script.h"
#include "hds/launch/tools.h"

namespace {

using hds::launch::find_project_program;
using hds::launch::find_system_program;

struct LocalArguments {
  hds::launch::LocalLaunchOptions options;
  bool dry_run = false;
};

struct SbatchArguments {
  hds::launch::SbatchOptions options;
  bool submit = false;
  std::string sbatch;
};

// A subcommand with the options both share: the configuration and the programs they run.
template <class Options>
CLI::App* add_job_command(CLI::App& app, const std::string& name, const std::string& description,
                          Options& options) {
  CLI::App* command = app.add_subcommand(name, description);
  command->add_option("--config", options.config_path, "Job configuration (text format)")
      ->required();
  command->add_option("--set", options.overrides,
                      "Override a field for the service and the trainers: --set train.epochs=5");
  command->add_option(
      "--data-service", options.data_service,
      "hds-data-service to run (default: $HDS_DATA_SERVICE, else beside hds-launch)");
  command->add_option("--trainer", options.trainer,
                      "hds-trainer to run (default: $HDS_TRAINER, else beside hds-launch)");
  return command;
}

void add_local_command(CLI::App& app, LocalArguments& arguments) {
  hds::launch::LocalLaunchOptions& options = arguments.options;
  CLI::App* local = add_job_command(
      app, "local", "Run a job on this machine: the data service and N trainer ranks under mpirun",
      options);
  local->add_option("--np", options.ranks, "Trainer ranks")->required()->check(CLI::Range(1, 4096));
  local->add_option("--resume", options.resume,
                    "auto (the run's latest checkpoint, if any) or a checkpoint directory");
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
  local->add_flag("--dry-run", arguments.dry_run, "Print the mpirun command line and exit");
}

void add_sbatch_command(CLI::App& app, SbatchArguments& arguments) {
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
  sbatch->add_flag("--submit", arguments.submit, "Submit the script with sbatch");
  sbatch->add_option("--sbatch", arguments.sbatch,
                     "sbatch to use (default: $HDS_SBATCH, else PATH)");
}

int run_local_command(LocalArguments& arguments) {
  hds::launch::LocalLaunchOptions& options = arguments.options;
  options.data_service = find_project_program("hds-data-service", "data_service",
                                              options.data_service, "HDS_DATA_SERVICE");
  options.trainer = find_project_program("hds-trainer", "trainer", options.trainer, "HDS_TRAINER");
  options.mpirun = find_system_program("mpirun", options.mpirun, "HDS_MPIRUN");
  if (arguments.dry_run) {
    const auto command =
        hds::launch::mpirun_command(options, "SOCKET", "JOB_ID", hds::launch::physical_cores(), "");
    for (const std::string& word : command) std::cout << hds::launch::shell_quote(word) << " ";
    std::cout << std::endl;
    return 0;
  }
  return hds::launch::run_local(options, std::cout, std::cerr, std::cout);
}

int run_sbatch_command(SbatchArguments& arguments) {
  hds::launch::SbatchOptions& options = arguments.options;
  options.data_service = find_project_program("hds-data-service", "data_service",
                                              options.data_service, "HDS_DATA_SERVICE");
  options.trainer = find_project_program("hds-trainer", "trainer", options.trainer, "HDS_TRAINER");
  const hds::launch::SbatchJob job = hds::launch::prepare_sbatch_job(options);
  hds::launch::write_sbatch_job(job);
  std::cout << "script: " << job.script_path << "\n"
            << "config: " << job.config_copy_path << "\n"
            << "metrics: " << job.metrics << "\n";
  if (arguments.submit) {
    const std::string sbatch = find_system_program("sbatch", arguments.sbatch, "HDS_SBATCH");
    std::cout << "submitted job " << hds::launch::submit_sbatch_job(job, sbatch) << "\n"
              << "output: " << job.output_dir << "/slurm-<job>.out\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hds-launch: run HDS training jobs on this machine (mpirun) or on Slurm"};
  LocalArguments local;
  add_local_command(app, local);
  SbatchArguments sbatch;
  add_sbatch_command(app, sbatch);
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) throw CLI::RequiredError("a subcommand (local, sbatch)");
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : hds::launch::kExitUsage;
  }
  try {
    if (app.got_subcommand("local")) return run_local_command(local);
    if (app.got_subcommand("sbatch")) return run_sbatch_command(sbatch);
  } catch (const hds::config::ConfigError& error) {
    std::cerr << "hds-launch: configuration error: " << error.what() << "\n";
    return hds::launch::kExitUsage;
  } catch (const hds::launch::UsageError& error) {
    std::cerr << "hds-launch: " << error.what() << "\n";
    return hds::launch::kExitUsage;
  } catch (const std::exception& error) {
    std::cerr << "hds-launch: error: " << error.what() << "\n";
    return hds::launch::kExitLaunchFailed;
  }
  return hds::launch::kExitUsage;
}

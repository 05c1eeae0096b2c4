#include "hds/launch/commands.h"

#include <filesystem>
#include <memory>
#include <ostream>
#include <set>

#include "hds/common/exit_codes.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/launch/job_lock.h"
#include "hds/launch/process.h"
#include "hds/launch/tools.h"
#include "hds/scoring/experiment_tables.h"

namespace hds::launch {

namespace {

// The project's two programs a job runs, from the options, the environment or beside hds-launch.
template <class Options>
void find_job_programs(Options& options) {
  options.data_service = find_project_program("hds-data-service", "data_service",
                                              options.data_service, "HDS_DATA_SERVICE");
  options.trainer = find_project_program("hds-trainer", "trainer", options.trainer, "HDS_TRAINER");
}

// Every program the runs of an experiment use, this one included.
void find_experiment_programs(ExperimentOptions& options) {
  find_job_programs(options);
  options.launcher = find_project_program("hds-launch", "launcher", options.launcher, "HDS_LAUNCH");
  options.mpirun = find_system_program("mpirun", options.mpirun, "HDS_MPIRUN");
}

// Runs `runs`, then reads their evaluations and writes `<folder>/<table_name>.md` and
// `<folder>/<json_name>.json` with `table` and experiment_json; prints the table.
int run_and_tabulate(const std::vector<ExperimentRun>& runs, ExperimentOptions& options,
                     const std::filesystem::path& folder, const std::string& table_name,
                     const std::string& json_name,
                     std::string (*table)(const std::vector<hds::scoring::EvaluatedRun>&),
                     std::ostream& out, std::ostream& messages) {
  find_experiment_programs(options);
  const int code = run_experiments(runs, options, messages);
  if (code != hds::common::kExitFinished) return code;
  std::vector<hds::scoring::EvaluatedRun> evaluated;
  for (const ExperimentRun& run : runs) {
    const std::string path = evaluation_file(run);
    evaluated.push_back(
        hds::scoring::parse_evaluated_run(run.name, path, hds::common::read_whole_file(path)));
  }
  const std::string markdown = table(evaluated);
  hds::common::replace_file((folder / (table_name + ".md")).string(), markdown);
  hds::common::replace_file((folder / (json_name + ".json")).string(),
                            hds::scoring::experiment_json(evaluated));
  out << markdown << "wrote " << (folder / (table_name + ".md")).string() << " and "
      << (folder / (json_name + ".json")).string() << "\n";
  return hds::common::kExitFinished;
}

}  // namespace

int run_cv_command(CrossValidationCommand command, std::ostream& out, std::ostream& messages) {
  ExperimentOptions& options = command.options;
  if (command.folds < 3)
    throw UsageError("--folds " + std::to_string(command.folds) +
                     ": needs at least 3 (train, validation and test folds)");
  options.overrides.push_back("data.folds=" + std::to_string(command.folds));
  const hds::config::Config config =
      hds::config::load_config(options.config_path, options.overrides);
  if (!hds::config::divides_into_folds(config.data()))
    throw UsageError("cv: data.source " + config.data().source() +
                     " has fixed splits; cross-validation needs one that divides its films into "
                     "folds (mini-mias, inbreast, or phantom with "
                     "data.phantom.divide_into_folds: true)");
  std::vector<int> rotations = command.rotations;
  if (rotations.empty()) {
    for (int k = 0; k < command.folds; ++k) rotations.push_back(k);
  }
  const std::filesystem::path folder = std::filesystem::path(absolute_output_dir(config)) / "cv";
  std::vector<ExperimentRun> runs;
  std::set<int> seen;
  for (int k : rotations) {
    if (k < 0 || k >= command.folds)
      throw UsageError("--rotations: " + std::to_string(k) + " is not in 0.." +
                       std::to_string(command.folds - 1));
    if (!seen.insert(k).second)
      throw UsageError("--rotations: " + std::to_string(k) + " is listed twice");
    const std::string name = "fold-" + std::to_string(k);
    runs.push_back({name, {"data.fold=" + std::to_string(k)}, (folder / name).string()});
  }
  return run_and_tabulate(runs, options, folder, "table2", "cv",
                          hds::scoring::cross_validation_markdown, out, messages);
}

int run_ablation_command(AblationCommand command, std::ostream& out, std::ostream& messages) {
  ExperimentOptions& options = command.options;
  const hds::config::Config config =
      hds::config::load_config(options.config_path, options.overrides);
  const std::filesystem::path folder =
      std::filesystem::path(absolute_output_dir(config)) / "ablation";
  std::vector<ExperimentRun> runs;
  const auto* variants = hds::config::LossConfig::Variant_descriptor();
  for (int i = 0; i < variants->value_count(); ++i) {
    const std::string name = variants->value(i)->name();
    runs.push_back({name, {"loss.variant=" + name}, (folder / name).string()});
  }
  return run_and_tabulate(runs, options, folder, "table1", "ablation",
                          hds::scoring::ablation_markdown, out, messages);
}

int run_local_command(LocalCommand command, std::ostream& out, std::ostream& messages) {
  LocalLaunchOptions& options = command.options;
  find_job_programs(options);
  options.mpirun = find_system_program("mpirun", options.mpirun, "HDS_MPIRUN");
  if (command.dry_run) {
    for (const std::string& word :
         mpirun_command(options, "SOCKET", "JOB_ID", physical_cores(), "")) {
      out << shell_quote(word) << " ";
    }
    out << std::endl;
    return hds::common::kExitFinished;
  }
  return run_local(options, out, messages, out);
}

void run_clean_command(std::ostream& out) {
  const int cleaned = clean_abandoned_jobs(out);
  out << "hds-launch: "
      << (cleaned == 0 ? "no abandoned job" : std::to_string(cleaned) + " abandoned job(s) cleaned")
      << std::endl;
}

void run_sbatch_command(SbatchCommand command, std::ostream& out) {
  find_job_programs(command.options);
  command.options.launcher =
      find_project_program("hds-launch", "launcher", command.options.launcher, "HDS_LAUNCH");
  const SbatchJob job = prepare_sbatch_job(command.options);
  write_sbatch_job(job);
  out << "script: " << job.script_path << "\n"
      << "config: " << job.config_copy_path << "\n"
      << "metrics: " << job.metrics << "\n";
  if (command.submit) {
    const std::string sbatch = find_system_program("sbatch", command.sbatch, "HDS_SBATCH");
    out << "submitted job " << submit_sbatch_job(job, sbatch) << "\n"
        << "output: " << job.output_dir << "/slurm-<job>.out\n";
  }
}

// ---------------------------------------------------------------------------------------------
// The command line of each subcommand.

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

CLI::App* add_local_options(CLI::App& app, LocalCommand& arguments) {
  LocalLaunchOptions& options = arguments.options;
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

CLI::App* add_sbatch_options(CLI::App& app, SbatchCommand& arguments) {
  SbatchOptions& options = arguments.options;
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
CLI::App* add_slurm_run_options(CLI::App& app, SlurmRunOptions& options) {
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
CLI::App* add_experiment_options(CLI::App& app, const std::string& name,
                                 const std::string& description, ExperimentOptions& options) {
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

hds::common::Subcommand add_local_command(CLI::App& app, std::ostream& out,
                                          std::ostream& messages) {
  auto command = std::make_shared<LocalCommand>();
  return {add_local_options(app, *command),
          [command, &out, &messages] { return run_local_command(*command, out, messages); }};
}

hds::common::Subcommand add_sbatch_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<SbatchCommand>();
  return {add_sbatch_options(app, *command), [command, &out] {
            run_sbatch_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

hds::common::Subcommand add_slurm_run_command(CLI::App& app, std::ostream& messages) {
  auto options = std::make_shared<SlurmRunOptions>();
  return {add_slurm_run_options(app, *options),
          [options, &messages] { return run_slurm(*options, messages); }};
}

hds::common::Subcommand add_cv_command(CLI::App& app, std::ostream& out, std::ostream& messages) {
  auto command = std::make_shared<CrossValidationCommand>();
  CLI::App* node = add_experiment_options(
      app, "cv", "Cross-validate: train and evaluate every rotation of the folds, then Table 2",
      command->options);
  node->add_option("--folds", command->folds, "Folds (data.folds)")->capture_default_str();
  node->add_option("--rotations", command->rotations, "Only these rotations (default: all)");
  return {node, [command, &out, &messages] { return run_cv_command(*command, out, messages); }};
}

hds::common::Subcommand add_ablation_command(CLI::App& app, std::ostream& out,
                                             std::ostream& messages) {
  auto command = std::make_shared<AblationCommand>();
  CLI::App* node = add_experiment_options(
      app, "ablation", "Train and evaluate the four loss variants on one split, then Table 1",
      command->options);
  return {node,
          [command, &out, &messages] { return run_ablation_command(*command, out, messages); }};
}

hds::common::Subcommand add_clean_command(CLI::App& app, std::ostream& out) {
  CLI::App* node = app.add_subcommand(
      "clean",
      "Remove what jobs on this machine whose hds-launch died left behind (rings, sockets, "
      "Open MPI folders, Prometheus targets); running jobs are not touched");
  return {node, [&out] {
            run_clean_command(out);
            return hds::common::kExitFinished;
          }};
}

}  // namespace hds::launch

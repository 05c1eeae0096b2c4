#include "hds/launch/commands.h"

#include <filesystem>
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

}  // namespace hds::launch

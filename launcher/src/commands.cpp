#include "hds/launch/commands.h"

#include <ostream>

#include "hds/launch/tools.h"

namespace hds::launch {

namespace {

// The project's two programs a job runs, from the options, the environment or beside hds-launch.
template <class Options>
void find_job_programs(Options& options) {
  options.data_service = find_project_program("hds-data-service", "data_service",
                                              options.data_service, "HDS_DATA_SERVICE");
  options.trainer = find_project_program("hds-trainer", "trainer", options.trainer, "HDS_TRAINER");
}

}  // namespace

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

void run_sbatch_command(SbatchCommand command, std::ostream& out) {
  find_job_programs(command.options);
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

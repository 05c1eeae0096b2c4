#include "hds/launch/slurm_script.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <regex>
#include <sstream>

#include "hds/common/exit_codes.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/launch/process.h"
#include "hds/launch/sbatch_template.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

// Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or no limit.
const std::regex kTimeLimit(
    R"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?|UNLIMITED|INFINITE)");
// What can stand in an #SBATCH line without quoting (sbatch reads those lines without a shell).
const std::regex kPlainWord(R"([A-Za-z0-9_.,:%+=@/-]+)");

void require_plain(const std::string& what, const std::string& value) {
  if (!std::regex_match(value, kPlainWord)) {
    throw UsageError(what + " \"" + value +
                     "\": only letters, digits and _.,:%+=@/- can go into an "
                     "#SBATCH line");
  }
}

struct Plan {
  const SbatchOptions& options;
  int ranks_per_node;
  std::string output_dir;
  std::string working_dir;
  std::string config_copy;
  std::string job_name;
  double stop_grace_seconds;       // distributed.stop_grace_seconds
  double stop_checkpoint_seconds;  // distributed.stop_checkpoint_seconds
};

void check_counts(const SbatchOptions& options, const std::string& device) {
  if (options.nodes < 1) throw UsageError("--nodes must be at least 1");
  if (options.gpus_per_node < 0) throw UsageError("--gpus-per-node must be 0 or more");
  if (options.ranks_per_node < 0) throw UsageError("--ranks-per-node must be at least 1");
  if (options.cpus_per_task < 0) throw UsageError("--cpus-per-task must be at least 1");
  if (options.ready_timeout_seconds < 1) throw UsageError("--ready-timeout must be at least 1");
  const int gpus = options.gpus_per_node;
  if (gpus == 0 && options.ranks_per_node == 0) {
    throw UsageError(
        "--ranks-per-node is required with --gpus-per-node 0 (a CPU job): say how "
        "many trainer ranks each node runs");
  }
  if (gpus > 0 && options.ranks_per_node > gpus) {
    throw UsageError("--ranks-per-node " + std::to_string(options.ranks_per_node) +
                     " exceeds --gpus-per-node " + std::to_string(gpus) +
                     ": each rank drives the GPU of its local rank");
  }
  if (gpus > 0 && device != "cuda") {
    throw UsageError("--gpus-per-node " + std::to_string(gpus) + " but train.device is \"" +
                     device +
                     "\": add --set train.device=cuda, or run a CPU job with --gpus-per-node 0 "
                     "--ranks-per-node R");
  }
  if (gpus == 0 && device == "cuda") {
    throw UsageError("train.device is \"cuda\" but --gpus-per-node is 0: give the GPUs per node");
  }
}

// A Prometheus on one machine scrapes every node's ranks (the targets file names each node):
// ranks that listen on loopback could be reached by their own node only.
void check_metrics_reach(const SbatchOptions& options,
                         const hds::config::MonitoringConfig& monitoring) {
  if (options.nodes > 1 && monitoring.metrics_port() != 0 &&
      hds::config::metrics_on_loopback(monitoring)) {
    throw UsageError("monitoring.metrics_address is " + monitoring.metrics_address() +
                     " with --nodes " + std::to_string(options.nodes) +
                     ": the other nodes' ranks could not be scraped; add --set "
                     "monitoring.metrics_address=0.0.0.0 (or turn metrics off with --set "
                     "monitoring.metrics_port=0)");
  }
}

void check_words(const SbatchOptions& options) {
  if (!options.time.empty() && !std::regex_match(options.time, kTimeLimit)) {
    throw UsageError("--time \"" + options.time + "\": use minutes, HH:MM:SS or D-HH:MM:SS");
  }
  if (!options.partition.empty()) require_plain("--partition", options.partition);
  if (!options.job_name.empty()) require_plain("--job-name", options.job_name);
  for (const std::string& option : options.sbatch_options) {
    if (option.rfind("--", 0) != 0 || option.find_first_of("\n\r") != std::string::npos) {
      throw UsageError("--sbatch-option \"" + option +
                       "\": give one sbatch option, e.g. --sbatch-option=--account=proj");
    }
  }
}

std::string sbatch_line(const std::string& option) { return "#SBATCH " + option + "\n"; }

// The #SBATCH lines: the job's shape, where it runs and writes, the signal before the time limit
// and requeueing, then the user's own options.
std::string sbatch_lines(const Plan& plan) {
  const SbatchOptions& options = plan.options;
  std::string lines = sbatch_line("--job-name=" + plan.job_name) +
                      sbatch_line("--nodes=" + std::to_string(options.nodes)) +
                      sbatch_line("--ntasks-per-node=" + std::to_string(plan.ranks_per_node));
  if (options.gpus_per_node > 0) {
    lines += sbatch_line("--gpus-per-node=" + std::to_string(options.gpus_per_node));
  }
  if (options.cpus_per_task > 0) {
    lines += sbatch_line("--cpus-per-task=" + std::to_string(options.cpus_per_task));
  }
  if (!options.partition.empty()) lines += sbatch_line("--partition=" + options.partition);
  if (!options.time.empty()) lines += sbatch_line("--time=" + options.time);
  lines += sbatch_line("--chdir=" + plan.working_dir) +
           sbatch_line("--output=" + plan.output_dir + "/slurm-%j.out") +
           sbatch_line("--open-mode=append") +
           sbatch_line("--signal=B:USR1@" + std::to_string(kSlurmWarningSeconds)) +
           sbatch_line("--requeue");
  for (const std::string& option : options.sbatch_options) lines += sbatch_line(option);
  return lines;
}

// `hds-launch slurm-run`'s arguments, each quoted for the shell.
std::string slurm_run_arguments(const Plan& plan) {
  const SbatchOptions& options = plan.options;
  std::vector<std::string> words = {
      "--config",         plan.config_copy,
      "--ranks-per-node", std::to_string(plan.ranks_per_node),
      "--data-service",   options.data_service,
      "--trainer",        options.trainer,
      "--ready-timeout",  std::to_string(options.ready_timeout_seconds),
      "--max-restarts",   std::to_string(options.max_restarts)};
  if (!options.init_from.empty()) words.insert(words.end(), {"--init-from", options.init_from});
  std::string text;
  for (size_t i = 0; i < words.size(); i += 2) {
    text += (i == 0 ? "" : " \\\n  ") + words[i] + " " + shell_quote(words[i + 1]);
  }
  return text;
}

// deploy/slurm/hds-job.sbatch.in with its @NAME@ fields filled.
std::string script_text(const Plan& plan) {
  const SbatchOptions& options = plan.options;
  const std::time_t now = std::time(nullptr);
  char written[64];
  std::strftime(written, sizeof written, "%Y-%m-%d %H:%M", std::localtime(&now));
  std::string job = std::to_string(options.nodes) + " node(s) x " +
                    std::to_string(plan.ranks_per_node) + " trainer rank(s)";
  if (options.gpus_per_node > 0) {
    job += ", " + std::to_string(options.gpus_per_node) + " GPU(s) per node";
  }
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"#@SBATCH_OPTIONS@\n", sbatch_lines(plan)},
      {"@JOB@", job},
      {"@WRITTEN@", written},
      {"@SCRIPT@", options.script_path},
      {"@CONFIG@", plan.config_copy},
      {"@WARNING@", std::to_string(kSlurmWarningSeconds)},
      {"@LAUNCHER@", shell_quote(options.launcher)},
      {"@ARGUMENTS@", slurm_run_arguments(plan)}};
  std::string text = kSbatchTemplate;
  for (const auto& [field, value] : fields) {
    const size_t at = text.find(field);
    if (at == std::string::npos) throw LaunchError("the sbatch template lacks " + field);
    text.replace(at, field.size(), value);
  }
  return text;
}

}  // namespace

SbatchJob prepare_sbatch_job(const SbatchOptions& options) {
  hds::config::Config config = hds::config::load_config(options.config_path, options.overrides);
  check_counts(options, config.train().device());
  check_metrics_reach(options, config.monitoring());
  check_words(options);
  SbatchJob job;
  job.output_dir = absolute_output_dir(config);
  // The copy names the output directory absolutely; the other relative paths (data.root, ...)
  // keep meaning what they mean here, as the script runs in this directory (--chdir).
  config.mutable_train()->set_output_dir(job.output_dir);
  job.config_text = hds::config::to_text(config);
  job.script_path =
      fs::absolute(options.script_path.empty() ? fs::path(job.output_dir) / "hds-job.sbatch"
                                               : fs::path(options.script_path))
          .lexically_normal()
          .string();
  if (fs::is_directory(job.script_path)) {
    throw UsageError("--out " + job.script_path + " is a directory; name the script file");
  }
  fs::path copy = job.script_path;
  copy.replace_extension(".config.pbtxt");
  job.config_copy_path = copy.string();

  const std::string working_dir = fs::current_path().string();
  require_plain("the output directory", job.output_dir);
  require_plain("the current directory", working_dir);
  const std::string folder_name = fs::path(job.output_dir).filename().string();
  SbatchOptions resolved = options;
  resolved.script_path = job.script_path;
  if (!options.init_from.empty()) {
    resolved.init_from = checkpoint_argument("--init-from", options.init_from);
  }
  const Plan plan{resolved,
                  options.ranks_per_node > 0 ? options.ranks_per_node : options.gpus_per_node,
                  job.output_dir,
                  working_dir,
                  job.config_copy_path,
                  options.job_name.empty() ? "hds-" + folder_name : options.job_name,
                  config.distributed().stop_grace_seconds(),
                  config.distributed().stop_checkpoint_seconds()};
  // Both stages of an overdue stop, and a margin to requeue, between the warning and the limit.
  constexpr double kRequeueMarginSeconds = 10;
  if (plan.stop_grace_seconds + plan.stop_checkpoint_seconds + kRequeueMarginSeconds >
      kSlurmWarningSeconds) {
    throw UsageError(
        "distributed.stop_grace_seconds + distributed.stop_checkpoint_seconds = " +
        std::to_string(static_cast<int>(plan.stop_grace_seconds + plan.stop_checkpoint_seconds)) +
        " s: with " + std::to_string(static_cast<int>(kRequeueMarginSeconds)) +
        " s to requeue, a stop must fit in the " + std::to_string(kSlurmWarningSeconds) +
        " s Slurm gives between its warning and the time limit");
  }
  require_plain("the job name", plan.job_name);
  job.script_text = script_text(plan);
  job.metrics = hds::config::describe_metrics_endpoints(config.monitoring(), plan.ranks_per_node);
  if (config.monitoring().metrics_port() != 0) job.metrics += " on every node";
  return job;
}

void write_sbatch_job(const SbatchJob& job) {
  std::error_code error;
  for (const fs::path& folder :
       {fs::path(job.output_dir), fs::path(job.script_path).parent_path()}) {
    fs::create_directories(folder, error);
    if (error) throw LaunchError("cannot create " + folder.string() + ": " + error.message());
  }
  auto write = [](const std::string& path, const std::string& text) {
    try {
      hds::common::replace_file(path, text);
    } catch (const hds::common::FileWriteError& e) {
      throw LaunchError(e.what());
    }
  };
  write(job.config_copy_path, job.config_text);
  write(job.script_path, job.script_text);
  ::chmod(job.script_path.c_str(), 0755);
}

std::string submit_sbatch_job(const SbatchJob& job, const std::string& sbatch) {
  SpawnOptions spawn;
  spawn.pipe_output = true;
  spawn.own_process_group = false;
  Process process = Process::spawn({sbatch, "--parsable", job.script_path}, spawn);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(process.output_fd(), buffer, sizeof buffer)) != 0;) {
    if (n > 0) output.append(buffer, static_cast<size_t>(n));
    if (n < 0 && errno != EINTR) break;
  }
  process.wait_for(60);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (process.running() || process.wait_status() != 0) {
    throw LaunchError("sbatch " + job.script_path + " " +
                      (process.running() ? std::string("did not answer")
                                         : describe_wait_status(process.wait_status())) +
                      ": " + output);
  }
  // --parsable prints "jobid" or "jobid;cluster" (possibly after warnings on other lines).
  const std::string last_line = output.substr(output.find_last_of('\n') + 1);
  return last_line.substr(0, last_line.find(';'));
}

}  // namespace hds::launch

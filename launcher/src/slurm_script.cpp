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

std::string script_text(const Plan& plan) {
  const SbatchOptions& options = plan.options;
  const auto q = shell_quote;
  const std::time_t now = std::time(nullptr);
  char written[64];
  std::strftime(written, sizeof written, "%Y-%m-%d %H:%M", std::localtime(&now));
  const std::string warning = std::to_string(kSlurmWarningSeconds);

  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# HDS training written by hds-launch sbatch (" << written << "): " << options.nodes
    << " node(s) x " << plan.ranks_per_node << " trainer rank(s)";
  if (options.gpus_per_node > 0) s << ", " << options.gpus_per_node << " GPU(s) per node";
  s << ".\n"
    << "# Configuration: " << plan.config_copy << "\n"
    << "#   (the effective one, --set options applied; a requeued run reads it again).\n"
    << "# Submit: sbatch " << options.script_path << "\n"
    << "# Stop with a checkpoint: Slurm sends USR1 to this script " << warning
    << " s before the time limit, or\n"
    << "# `scancel --signal=USR1 --batch JOB` at once. The script forwards it to the trainers, "
       "which\n"
    << "# agree on a step; rank 0 writes a checkpoint; they exit " << hds::common::kExitStopped
    << "; the script stops the data\n"
    << "# services and requeues the job, whose next run resumes from that checkpoint. A stop not "
       "done\n"
    << "# after " << plan.stop_grace_seconds
    << " s (distributed.stop_grace_seconds) escalates: rank 0 is asked (USR2) for a checkpoint\n"
    << "# of its last completed step, and " << plan.stop_checkpoint_seconds
    << " s later (stop_checkpoint_seconds) the trainers are killed.\n";
  s << sbatch_line("--job-name=" + plan.job_name)
    << sbatch_line("--nodes=" + std::to_string(options.nodes))
    << sbatch_line("--ntasks-per-node=" + std::to_string(plan.ranks_per_node));
  if (options.gpus_per_node > 0) {
    s << sbatch_line("--gpus-per-node=" + std::to_string(options.gpus_per_node));
  }
  if (options.cpus_per_task > 0) {
    s << sbatch_line("--cpus-per-task=" + std::to_string(options.cpus_per_task));
  }
  if (!options.partition.empty()) s << sbatch_line("--partition=" + options.partition);
  if (!options.time.empty()) s << sbatch_line("--time=" + options.time);
  s << sbatch_line("--chdir=" + plan.working_dir)
    << sbatch_line("--output=" + plan.output_dir + "/slurm-%j.out")
    << sbatch_line("--open-mode=append") << sbatch_line("--signal=B:USR1@" + warning)
    << sbatch_line("--requeue");
  for (const std::string& option : options.sbatch_options) s << sbatch_line(option);

  s << R"SH(set -u

trainer=)SH"
    << q(options.trainer) << R"SH(
data_service=)SH"
    << q(options.data_service) << R"SH(
launcher=)SH"
    << q(options.launcher) << R"SH(
config=)SH"
    << q(plan.config_copy) << R"SH(
output_dir=)SH"
    << q(plan.output_dir) << R"SH(
ranks_per_node=)SH"
    << plan.ranks_per_node << R"SH(
ready_timeout=)SH"
    << options.ready_timeout_seconds << R"SH(
# hds-trainer's exit code for "stopped with a checkpoint" (hds/common/exit_codes.h); the job
# exits with it too when it requeues itself.
exit_stopped=)SH"
    << hds::common::kExitStopped << R"SH(
stop_grace=)SH"
    << plan.stop_grace_seconds << R"SH(
stop_checkpoint=)SH"
    << plan.stop_checkpoint_seconds << R"SH(
# Failures mended by a new start (hds::common::is_restartable: a rank lost or hung, a process
# killed) requeue the job at most max_restarts times; the count survives requeues in a file.
max_restarts=)SH"
    << options.max_restarts << R"SH(
restarts_file="$output_dir/.restarts-${SLURM_JOB_ID}"
restartable() { [ "$1" -eq )SH"
    << hds::common::kExitRankLost << R"SH( ] || [ "$1" -gt )SH" << hds::common::kExitSignalBase
    << R"SH( ]; }

# Each run of the job (a requeued one too) has its own job id (ring names) and socket directory.
run=${SLURM_RESTART_COUNT:-0}
job_id="slurm-${SLURM_JOB_ID}-${run}"
socket="/tmp/hds-${SLURM_JOB_ID}-${run}/data.sock"
service_log="$output_dir/data-service-${SLURM_JOB_ID}-${run}"
# Open MPI's shared-memory segments and session files go to a folder of this run on every node,
# removed at the end: a rank killed with SIGKILL leaves them behind, and /dev/shm is memory.
segments="/dev/shm/hds-${SLURM_JOB_ID}-${run}"
segments_made=""
ranks=$((SLURM_NNODES * ranks_per_node))
log() { echo "hds-job $(date '+%F %T'): $*"; }

service_pid=""
trainer_pid=""
targets_file=""
stop_signal=""
stop_stage=0  # 1: stop asked for, 2: rank 0 asked for an overdue checkpoint, 3: trainers killed
stop_timer=""

# The step named $1 of this job ("JOBID.STEP"), or "".
step_named() {
  squeue --steps --jobs "$SLURM_JOB_ID" --noheader --format "%i %j" |
    awk -v name="$1" '$2 == name { print $1; exit }'
}

# After $1 seconds this shell gets USR2: the next stage of a stop that is taking too long.
start_stop_timer() {
  (sleep "$1"; kill -USR2 $$) 2>/dev/null &
  stop_timer=$!
}

# Slurm signals this shell alone (--signal=B:..., scancel --batch): pass the stop on to the
# trainer step, whose srun forwards SIGUSR1 to every rank.
request_stop() {
  stop_signal=$1
  log "SIG$1: asking the trainers to stop with a checkpoint"
  if [ -n "$trainer_pid" ]; then kill -USR1 "$trainer_pid" 2>/dev/null; fi
  if [ "$stop_stage" -eq 0 ]; then
    stop_stage=1
    start_stop_timer "$stop_grace"
  fi
}
trap 'request_stop USR1' USR1
trap 'request_stop TERM' TERM

stop_overdue() {
  if [ "$stop_stage" -eq 1 ]; then
    stop_stage=2
    log "the trainers have not stopped ${stop_grace} s after the request (distributed.stop_grace_seconds): asking rank 0 for a checkpoint of its last completed step"
    if [ -n "$trainer_pid" ]; then kill -USR2 "$trainer_pid" 2>/dev/null; fi
    start_stop_timer "$stop_checkpoint"
  elif [ "$stop_stage" -eq 2 ]; then
    stop_stage=3
    log "the trainers still run ${stop_checkpoint} s later (distributed.stop_checkpoint_seconds): killing them"
    local step
    step=$(step_named hds-trainer)
    if [ -n "$step" ]; then scancel --signal=KILL "$step"; fi
    if [ -n "$trainer_pid" ]; then kill -KILL "$trainer_pid" 2>/dev/null; fi
  fi
}
trap stop_overdue USR2

# `wait` returns early when a trapped signal comes: wait until $1 has really ended; its exit
# status goes to $status (bash keeps it for a second wait).
wait_for() {
  while kill -0 "$1" 2>/dev/null; do wait "$1"; done
  wait "$1"
  status=$?
}

# Each service removes its rings and socket on SIGTERM. srun would turn a SIGTERM into SIGKILL
# for its tasks, so the signal goes to the services' step through Slurm instead.
stop_services() {
  if [ -n "$service_pid" ]; then
    local step
    step=$(step_named hds-data-service)
    if [ -n "$step" ]; then scancel --signal=TERM "$step"; fi
    for _ in $(seq 150); do kill -0 "$service_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$service_pid" 2>/dev/null
    wait "$service_pid" 2>/dev/null
    service_pid=""
    rmdir "${socket%/*}" 2>/dev/null  # this node's, should it have been there before
  fi
}

# With proctrack/linuxproc Slurm leaves this script's background children running: end them.
# Runs "$@" once on every node of the job.
on_every_node() {
  srun --overlap --mpi=none --nodes="$SLURM_NNODES" --ntasks="$SLURM_NNODES" --ntasks-per-node=1 \
    --job-name=hds-setup "$@"
}

remove_segments() {
  if [ -n "$segments_made" ]; then
    on_every_node rm -rf "$segments" 2>/dev/null
    rm -rf "$segments"  # this node's at least, should srun no longer run
    segments_made=""
  fi
}

finish() {
  # Slurm's TERM (a requeue, scancel) must not cut the clean-up short; KillWait bounds it.
  trap '' USR1 TERM USR2
  if [ -n "$targets_file" ]; then rm -f "$targets_file"; fi
  if [ -n "$stop_timer" ]; then
    pkill -P "$stop_timer" 2>/dev/null  # its sleep
    kill "$stop_timer" 2>/dev/null
  fi
  if [ -n "$trainer_pid" ]; then
    kill -KILL "$trainer_pid" 2>/dev/null
    wait "$trainer_pid" 2>/dev/null
  fi
  stop_services
  remove_segments
}
trap finish EXIT

# Stopped and checkpointed (or stopped before the trainers began): come back as a new run.
requeue() {
  stop_services
  # Slurm cancels this run as soon as it is requeued: what must go goes first.
  if [ -n "$targets_file" ]; then rm -f "$targets_file"; fi
  remove_segments
  log "requeueing job $SLURM_JOB_ID; its next run resumes from $output_dir/checkpoints/latest"
  scontrol requeue "$SLURM_JOB_ID"
  exit "$exit_stopped"
}

# Requeues the job after failure $1 when restarts are left (and then does not return).
restart_after() {
  local done=0
  [ -f "$restarts_file" ] && done=$(cat "$restarts_file")
  if [ "$done" -ge "$max_restarts" ]; then
    [ "$max_restarts" -gt 0 ] && log "no restart left (--max-restarts $max_restarts) after $1"
    return 0
  fi
  echo $((done + 1)) >"$restarts_file"
  log "restart $((done + 1))/$max_restarts after $1"
  requeue
}

log "run $run of job $SLURM_JOB_ID on $SLURM_JOB_NODELIST: $SLURM_NNODES data service(s), log ${service_log}-<node>.log"
services_started=0  # each service started in this run prints one "ready: socket" line
start_services() {
  srun --overlap --mpi=none --nodes="$SLURM_NNODES" --ntasks="$SLURM_NNODES" --ntasks-per-node=1 \
    --job-name=hds-data-service --kill-on-bad-exit=0 --output="${service_log}-%N.log" \
    --open-mode=append "$data_service" serve --config "$config" --socket "$socket" --job-id "$job_id" &
  service_pid=$!
  services_started=$((services_started + SLURM_NNODES))
}

# Until every service started so far is ready; 1 (with the reason logged) when one exited first
# or --ready-timeout passed. A stop before the trainers started requeues the job.
wait_for_services() {
  local ready=0
  for ((tick = 0; tick < ready_timeout * 5; tick++)); do
    ready=$(cat "$service_log"-*.log 2>/dev/null | grep -c '^ready: socket ')
    [ "$ready" -ge "$services_started" ] && return 0
    if [ -n "$stop_signal" ] && [ -z "$trainer_pid" ]; then requeue; fi
    if ! kill -0 "$service_pid" 2>/dev/null; then
      log "error: a data service exited before it was ready; see ${service_log}-*.log"
      return 1
    fi
    sleep 0.2
  done
  log "error: $((ready + SLURM_NNODES - services_started)) of $SLURM_NNODES data service(s) ready after ${ready_timeout} s; see ${service_log}-*.log"
  return 1
}

# A service died while the trainers run: with a restart left, start the services again; the
# ranks wait for them (data.service_reconnect_seconds) and go on from the batch due.
restart_services_in_place() {
  local done=0
  [ -f "$restarts_file" ] && done=$(cat "$restarts_file")
  [ "$done" -ge "$max_restarts" ] && return 0  # the ranks then fail, and the job with them
  echo $((done + 1)) >"$restarts_file"
  log "restart $((done + 1))/$max_restarts: a data service died while the trainers ran (see ${service_log}-*.log): starting the services again in place"
  stop_services
  start_services
  wait_for_services && log "restart $((done + 1))/$max_restarts: the data services are ready again"
}

start_services
# Prometheus finds this run's services and ranks from now on (monitoring.targets_dir).
targets_file=$("$launcher" targets --config "$config" --job-id "$job_id" \
  --ranks-per-node "$ranks_per_node" --slurm-job-id "$SLURM_JOB_ID" \
  --nodes $(scontrol show hostnames "$SLURM_JOB_NODELIST")) ||
  log "warning: could not write the Prometheus targets file (the job runs on without it)"
[ -n "$targets_file" ] && log "Prometheus targets: $targets_file"

# Every service prints "ready: socket PATH" once its dataset is loaded and it listens.
wait_for_services || exit 1

if on_every_node mkdir -p "$segments"; then
  segments_made=1
  export OMPI_MCA_btl_vader_backing_directory="$segments" OMPI_MCA_orte_tmpdir_base="$segments"
else
  log "warning: cannot create $segments on every node: Open MPI's segments go to its default"
fi
log "starting $ranks trainer rank(s)"
srun --mpi=pmix --kill-on-bad-exit=1 --nodes="$SLURM_NNODES" --ntasks="$ranks" \
  --ntasks-per-node="$ranks_per_node" --job-name=hds-trainer \
  "$trainer" fit --config "$config" --set "data.service_socket=$socket" \
  --set "data.service_job_id=$job_id" )SH"
    << (options.max_restarts > 0
            ? "--set " + q(service_reconnect_assignment(options.ready_timeout_seconds)) + " "
            : std::string())
    << (options.init_from.empty() ? std::string() : "--init-from " + q(options.init_from) + " ")
    << R"SH(--resume auto &
trainer_pid=$!
# A stop that came while srun started.
if [ -n "$stop_signal" ]; then kill -USR1 "$trainer_pid" 2>/dev/null; fi
# Watch the services while the trainers run (`wait` on a sleep returns early for a trapped signal).
while kill -0 "$trainer_pid" 2>/dev/null; do
  if [ "$max_restarts" -gt 0 ] && [ "$stop_stage" -eq 0 ] && ! kill -0 "$service_pid" 2>/dev/null; then
    restart_services_in_place
  fi
  sleep 1 &
  wait $! 2>/dev/null
done
wait_for "$trainer_pid"
trainers=$status
trainer_pid=""
remove_segments  # the ranks are gone, killed ones too
# An escalated stop leaves the checkpoints intact (rank 0's last, if it could write one).
if [ "$stop_stage" -ge 2 ]; then requeue; fi

case $trainers in
  0)
    stop_services
    log "finished; summary $output_dir/summary.json, checkpoints $output_dir/checkpoints"
    exit 0 ;;
  "$exit_stopped")
    requeue ;;
  *)
    failure=""
    if ! kill -0 "$service_pid" 2>/dev/null; then
      failure="a data service died (see ${service_log}-*.log) and the trainers exited with status $trainers"
    elif restartable "$trainers"; then
      failure="the trainers exited with status $trainers"
    fi
    if [ -n "$failure" ]; then restart_after "$failure"; fi
    stop_services
    log "error: the trainers exited with status $trainers"
    exit "$trainers" ;;
esac
)SH";
  return s.str();
}

}  // namespace

SbatchJob prepare_sbatch_job(const SbatchOptions& options) {
  hds::config::Config config = hds::config::load_config(options.config_path, options.overrides);
  check_counts(options, config.train().device());
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

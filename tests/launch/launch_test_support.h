// Shared pieces of the launcher tests: a tiny job configuration, hds-launch (and other programs)
// run as real processes with their output in a file, and checks that a job left nothing behind.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hds/launch/process.h"
#include "hds/launch/tools.h"
#include "hds/test/eventually.h"
#include "hds/test/files.h"

namespace hds::launch::testing {

namespace fs = std::filesystem;

using hds::test::eventually;
using hds::test::read_text;
using hds::test::scratch_dir;
using hds::test::write_text;

// A job that trains a model of a few thousand parameters on 8 phantom films of 256x128 with
// 128x128 patches, batch 2 per rank: 2 steps an epoch with 2 ranks, milliseconds a step. One
// progress line per step; a checkpoint every `checkpoint_every` epochs and at the end; no
// validation; no metrics export. Written to <dir>/job.pbtxt; output under <dir>/run.
inline std::string write_tiny_job(const std::string& dir, int epochs, int checkpoint_every = 1000) {
  const std::string path = dir + "/job.pbtxt";
  write_text(path, R"(
model { widths: [4, 4, 8, 8, 8, 8, 8, 8, 8, 4, 4] blocks_per_stage: 1 }
data {
  source: "phantom"
  phantom { train_count: 8 val_count: 2 test_count: 0 seed: 7 }
  image_rows: 256
  image_cols: 128
  patch_rows: 128
  patch_cols: 128
  cache_dir: ")" + dir +
                       R"(/cache"
}
train {
  epochs: )" + std::to_string(epochs) +
                       R"(
  batch_size: 2
  validate_every: 1000
  validate_from: 1000
  checkpoint_every: )" +
                       std::to_string(checkpoint_every) + R"(
  log_every_steps: 1
  threads: 1
  output_dir: ")" + dir +
                       R"(/run"
}
monitoring { metrics_port: 0 }
)");
  return path;
}

// The summary.json of the tiny job in `dir`.
inline nlohmann::json read_summary(const std::string& dir) {
  return nlohmann::json::parse(read_text(dir + "/run/summary.json"));
}

// The weights of the latest checkpoint of the tiny job in `dir`, as the bytes LibTorch wrote (the
// same weights give the same bytes).
inline std::string latest_weights(const std::string& dir) {
  return read_text(dir + "/run/checkpoints/latest/model.pt");
}

// A program run in the background with stdout and stderr in `log_path`.
class Command {
 public:
  Command(const std::vector<std::string>& argv, std::string log_path)
      : log_path_(std::move(log_path)) {
    fs::remove(log_path_);
    SpawnOptions options;
    options.output_file = log_path_;
    process_ = Process::spawn(argv, options);
  }

  pid_t pid() const { return process_.pid(); }
  std::string output() const { return read_text(log_path_); }
  void signal(int number) const { process_.signal(number); }

  // Polls the output for `pattern` (a regex) for up to `seconds`; the first match or none.
  std::optional<std::smatch> wait_for_output(const std::string& pattern, double seconds) {
    const std::regex expression(pattern);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    do {
      output_ = output();
      std::smatch match;
      if (std::regex_search(output_, match, expression)) return match;
      if (!process_.running() || process_.poll()) {
        output_ = output();
        if (std::regex_search(output_, match, expression)) return match;
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
  }

  // Waits up to `seconds` for the exit; its exit code (128 + N when killed by signal N), or none.
  std::optional<int> wait_exit(double seconds) {
    if (!process_.wait_for(seconds)) return std::nullopt;
    return exit_code_of(process_.wait_status());
  }

 private:
  std::string log_path_;
  std::string output_;  // keeps the smatch of wait_for_output valid
  Process process_;
};

// The processes now alive whose command line mentions `text` (a job id), this one excepted.
inline std::vector<std::string> processes_mentioning(const std::string& text) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    const std::string line = command_line(pid);
    if (line.find(text) != std::string::npos) found.push_back(name + ": " + line);
  }
  return found;
}

// Expects that nothing of job `job_id` is left: no process naming it, no ring.
inline void expect_nothing_left(const std::string& job_id) {
  // A process killed a moment ago may linger as a zombie until its parent reaps it.
  std::vector<std::string> processes;
  eventually([&] { return (processes = processes_mentioning(job_id)).empty(); }, 5);
  EXPECT_TRUE(processes.empty()) << "still running:\n" << ::testing::PrintToString(processes);
  EXPECT_TRUE(leftover_rings(job_id).empty())
      << "rings left: " << ::testing::PrintToString(leftover_rings(job_id));
}

// What jobs may leave in shared memory: the names in /dev/shm (rings, Open MPI's segments and
// their folders) and Open MPI's session directories (/tmp/ompi.<host>.<uid>/<session>, which hold
// PMIx's shared segments).
inline std::set<std::string> shared_memory_entries() {
  std::set<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/dev/shm", error)) {
    names.insert(entry.path().string());
  }
  for (const auto& entry : fs::directory_iterator("/tmp", error)) {
    if (entry.path().filename().string().rfind("ompi.", 0) != 0) continue;
    for (const auto& session : fs::directory_iterator(entry.path(), error)) {
      names.insert(session.path().string());
    }
  }
  return names;
}

// Expects shared memory to hold nothing that was not there `before` (a job's leftovers: a
// SIGKILLed rank's Open MPI segment, a killed mpirun's session, a ring). Tests of whole jobs run
// alone (RUN_SERIAL).
inline void expect_no_new_shared_memory(const std::set<std::string>& before) {
  std::vector<std::string> added;
  for (const std::string& name : shared_memory_entries()) {
    if (before.count(name) == 0) added.push_back(name);
  }
  EXPECT_TRUE(added.empty()) << "left behind: " << ::testing::PrintToString(added);
}

// The trainer ranks under `launcher` (hds-trainer processes below it).
inline std::vector<pid_t> trainer_ranks_of(pid_t launcher) {
  std::vector<pid_t> ranks;
  for (pid_t pid : descendants_of(launcher)) {
    if (command_name(pid) == "hds-trainer") ranks.push_back(pid);
  }
  return ranks;
}

// The value of variable `name` in the environment process `pid` started with, or "".
inline std::string environment_of(pid_t pid, const std::string& name) {
  std::ifstream environ("/proc/" + std::to_string(pid) + "/environ");
  std::string entry;
  while (std::getline(environ, entry, '\0')) {
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  }
  return "";
}

// The MPI rank of trainer process `pid` (OMPI_COMM_WORLD_RANK under mpirun, PMIX_RANK under
// srun, in its environment), or -1.
inline int mpi_rank_of(pid_t pid) {
  for (const std::string name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"}) {
    if (const std::string rank = environment_of(pid, name); !rank.empty()) return std::stoi(rank);
  }
  return -1;
}

// The trainer process of MPI rank `rank` under `launcher`, or -1.
inline pid_t trainer_rank(pid_t launcher, int rank) {
  for (pid_t pid : trainer_ranks_of(launcher)) {
    if (mpi_rank_of(pid) == rank) return pid;
  }
  return -1;
}

// The path of an installed program (on PATH, or in /usr/sbin or /sbin where daemons and
// administration tools live when sbin is off PATH), or "".
inline std::string installed_program(const std::string& name) {
  try {
    return find_system_program(name, "", "");
  } catch (const LaunchError&) {
  }
  for (const std::string folder : {"/usr/sbin", "/sbin"}) {
    if (::access((folder + "/" + name).c_str(), X_OK) == 0) return folder + "/" + name;
  }
  return "";
}

inline std::string launch_binary() { return HDS_LAUNCH_BINARY; }

// `hds-launch local --config CONFIG --np 2 --job-id JOB EXTRA...`.
inline std::vector<std::string> two_rank_local_job(const std::string& config,
                                                   const std::string& job,
                                                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {launch_binary(), "local", "--config", config,
                                   "--np",          "2",     "--job-id", job};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

inline bool trainer_built() { return fs::exists(HDS_TRAINER_BINARY_PATH); }

// Why whole jobs cannot run here (no trainer built, no mpirun), for GTEST_SKIP; none when they can.
inline std::optional<std::string> why_jobs_cannot_run() {
  if (!trainer_built()) return "hds-trainer is not built (HDS_BUILD_TRAINER=OFF)";
  try {
    find_system_program("mpirun", "", "HDS_MPIRUN");
  } catch (const LaunchError& error) {
    return std::string(error.what()) + " (Open MPI: apt-get install openmpi-bin libopenmpi-dev)";
  }
  return std::nullopt;
}

// What rank 0 says when the launcher escalates an overdue stop. Two outcomes are right: it
// checkpoints the last completed step, or that step is checkpointed already - when the frozen
// rank had sent its vote before it froze, rank 0 still agreed on the stop and saved it, and what
// is overdue is only the ranks leaving together.
inline std::string overdue_stop_checkpointed() {
  return R"(the stop is overdue \(SIGUSR2\): (checkpoint of the last completed step \(global step \d+\): |the last completed step \(global step \d+\) is checkpointed already: ))";
}

}  // namespace hds::launch::testing

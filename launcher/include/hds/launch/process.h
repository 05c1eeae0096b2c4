// Child processes of the launcher: fork + exec into a process group of their own, output to a
// file or a pipe, reaping without blocking, and the process tree as /proc shows it. Not
// thread-safe: one thread owns the launcher's children.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "hds/common/signals.h"

namespace hds::launch {

// A launch that cannot go on: a missing binary, a service that never got ready, a bad argument.
// what() says what failed and where to look.
class LaunchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A command line or argument the user must change (hds-launch exits 2 for these).
class UsageError : public LaunchError {
 public:
  using LaunchError::LaunchError;
};

struct SpawnOptions {
  // stdout and stderr go to this file, opened for appending ("" = see pipe_output).
  std::string output_file;
  // Without output_file: true sends stdout and stderr into a pipe (Process::output_fd()); false
  // leaves them as the launcher's own.
  bool pipe_output = false;
  // A process group of its own: a terminal's Ctrl-C then reaches the launcher alone, which
  // decides what each child gets.
  bool own_process_group = true;
  // Sent to the child when the launcher dies (PR_SET_PDEATHSIG), e.g. killed with SIGKILL; 0: none.
  int parent_death_signal = 0;
};

// One child. Killed with SIGKILL and reaped on destruction when still running.
class Process {
 public:
  Process() = default;
  // Starts argv[0] (a path) with stdin from /dev/null. Throws LaunchError when it cannot be
  // started (exec errors are reported by the parent, not by the child's output).
  static Process spawn(const std::vector<std::string>& argv, const SpawnOptions& options);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  // Started and not yet reaped.
  bool running() const { return pid_ > 0 && !reaped_; }
  // The read end of the output pipe (pipe_output), or -1.
  int output_fd() const { return output_fd_; }
  // The wait status once reaped.
  int wait_status() const { return status_; }

  // Reaps the child when it has exited; true once reaped.
  bool poll();
  // Waits up to `seconds` for the child to exit; true once reaped.
  bool wait_for(double seconds);
  // Sends signal `number` to the child (nothing once reaped: the pid may be another's by now).
  void signal(int number) const;
  // Records the status reap_children() collected for this child.
  void set_reaped(int status);

 private:
  void release();
  pid_t pid_ = -1;
  int output_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// How long the launcher waits for a process to die after SIGKILL (and to be reaped).
constexpr double kKillSeconds = 5;

// A short command run to its end, with stdout and stderr captured.
struct CommandResult {
  bool finished = false;  // false: still running after the time given, then killed
  int status = 0;         // the wait status once finished
  std::string output;
};
// Runs argv (argv[0] a path) for at most `seconds`. Throws LaunchError when it cannot start.
CommandResult run_to_end(const std::vector<std::string>& argv, double seconds);

// "exited with status 3", "was killed by signal 9 (Killed)".
std::string describe_wait_status(int status);
// The exit code a shell reports for a wait status: the status, or 128 + the signal.
int exit_code_of(int status);
// What the exit code of the program that started the ranks (mpirun, srun: 128 + N when a rank
// died of signal N) says of them: "a rank was killed by signal 9 (Killed)", "a rank hung or was
// lost (exit 4)" (hds::common::kExitRankLost), or "".
std::string describe_rank_failure(int code);
// How that program ended: "mpirun exited with status 137: a rank was killed by signal 9 (Killed)".
std::string describe_launcher_end(const std::string& program, int status);

// Reaps every child that has exited (waitpid(-1), no blocking). The statuses of `known`
// children are recorded on them; the others (orphans adopted by adopt_orphans) are dropped.
void reap_children(const std::vector<Process*>& known);

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER): an MPI rank
// whose mpirun died becomes our child instead of init's, so it can still be found and stopped.
void adopt_orphans();

// The descendants of `root` now, from /proc: children before their children.
std::vector<pid_t> descendants_of(pid_t root);

// The command name of `pid` (/proc/PID/comm, at most 15 characters), or "" when it is gone.
std::string command_name(pid_t pid);

// The command line of `pid` with arguments joined by spaces, or "" when it is gone.
std::string command_line(pid_t pid);

// Sends `number` to every descendant of this process except `spared` (-1: none) and its
// descendants, then waits up to `seconds` for them to die, reaping meanwhile (the statuses of
// `known` children are recorded on them; see reap_children). Returns how many got the signal.
int kill_descendants_except(int number, pid_t spared, const std::vector<Process*>& known,
                            double seconds);

// What stops a launcher's job with a checkpoint: SIGINT, SIGTERM, SIGHUP, and SIGUSR1 (Slurm's
// warning before the time limit), caught while the result lives; SIGPIPE is ignored meanwhile (a
// closed terminal must not kill the launcher before it has cleaned up).
hds::common::CaughtSignals catch_stop_signals();

}  // namespace hds::launch

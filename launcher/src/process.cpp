#include "hds/launch/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "hds/common/exit_codes.h"

namespace hds::launch {

namespace {

std::string system_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// In the child: reports errno through `report_fd` and exits 127.
[[noreturn]] void fail_in_child(int report_fd) {
  const int error = errno;
  [[maybe_unused]] const ssize_t written = ::write(report_fd, &error, sizeof error);
  _exit(127);
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(char* const* argv, int output_fd, const SpawnOptions& options,
                             pid_t parent, int report_fd) {
  auto fail = [report_fd] { fail_in_child(report_fd); };
  if (options.own_process_group && setpgid(0, 0) != 0) fail();
  if (options.parent_death_signal != 0) {
    if (prctl(PR_SET_PDEATHSIG, options.parent_death_signal, 0, 0, 0) != 0) fail();
    if (getppid() != parent) _exit(127);  // the parent died before the request took effect
  }
  // The launcher catches or ignores these; the child starts with the defaults and no mask.
  for (int number : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGPIPE, SIGCHLD}) ::signal(number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0) fail();
  if (output_fd >= 0 &&
      (dup2(output_fd, STDOUT_FILENO) < 0 || dup2(output_fd, STDERR_FILENO) < 0)) {
    fail();
  }
  execv(argv[0], argv);
  fail_in_child(report_fd);
}

}  // namespace

Process Process::spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) throw LaunchError("spawn: empty command line");
  // Everything the child needs is built before fork: it may not allocate afterwards.
  std::vector<char*> arguments;
  for (const std::string& argument : argv) arguments.push_back(const_cast<char*>(argument.c_str()));
  arguments.push_back(nullptr);

  int output_fd = -1;  // the child's stdout and stderr
  int read_fd = -1;    // our end of the pipe
  if (!options.output_file.empty()) {
    output_fd =
        ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (output_fd < 0) throw LaunchError(system_error("cannot open " + options.output_file));
  } else if (options.pipe_output) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) throw LaunchError(system_error("pipe"));
    read_fd = ends[0];
    output_fd = ends[1];
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw LaunchError(system_error("pipe"));

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ::close(report[0]);
    exec_child(arguments.data(), output_fd, options, parent, report[1]);
  }
  const int fork_errno = errno;
  ::close(report[1]);
  if (output_fd >= 0) ::close(output_fd);
  if (pid < 0) {
    ::close(report[0]);
    if (read_fd >= 0) ::close(read_fd);
    errno = fork_errno;
    throw LaunchError(system_error("cannot start " + argv[0]));
  }
  // The report pipe closes on a successful exec; otherwise it carries the child's errno.
  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(report[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  Process process;
  process.pid_ = pid;
  process.output_fd_ = read_fd;
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    process.wait_for(10);
    errno = child_errno;
    throw LaunchError(system_error("cannot run " + argv[0]));
  }
  // The parent sets the group too: a signal sent right after spawn() returns must not reach the
  // launcher's own group because the child had not yet run setpgid.
  if (options.own_process_group) setpgid(pid, pid);
  return process;
}

Process::~Process() { release(); }

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      output_fd_(std::exchange(other.output_fd_, -1)),
      reaped_(other.reaped_),
      status_(other.status_) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    release();
    pid_ = std::exchange(other.pid_, -1);
    output_fd_ = std::exchange(other.output_fd_, -1);
    reaped_ = other.reaped_;
    status_ = other.status_;
  }
  return *this;
}

void Process::release() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (output_fd_ >= 0) ::close(output_fd_);
  pid_ = -1;
  output_fd_ = -1;
}

bool Process::poll() {
  if (!running()) return reaped_;
  int status = 0;
  const pid_t result = waitpid(pid_, &status, WNOHANG);
  if (result == pid_) set_reaped(status);
  return reaped_;
}

bool Process::wait_for(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!poll() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return reaped_;
}

void Process::signal(int number) const {
  if (running()) ::kill(pid_, number);
}

void Process::set_reaped(int status) {
  reaped_ = true;
  status_ = status;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return hds::common::kExitSignalBase + WTERMSIG(status);
  return 1;
}

void reap_children(const std::vector<Process*>& known) {
  for (;;) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (Process* process : known) {
      if (process->running() && process->pid() == pid) process->set_reaped(status);
    }
  }
}

void adopt_orphans() { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

namespace {

// The parent of `pid` from /proc/PID/stat, or -1. The command name in parentheses may hold
// spaces and parentheses itself, so the fields are read after its last ')'.
pid_t parent_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t end_of_name = text.rfind(')');
  if (end_of_name == std::string::npos) return -1;
  std::istringstream fields(text.substr(end_of_name + 1));
  std::string state;
  pid_t parent = -1;
  fields >> state >> parent;
  return fields ? parent : -1;
}

}  // namespace

std::vector<pid_t> descendants_of(pid_t root) {
  std::multimap<pid_t, pid_t> children_of;
  if (DIR* proc = opendir("/proc")) {
    while (const dirent* entry = readdir(proc)) {
      char* end = nullptr;
      const long pid = std::strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      const pid_t parent = parent_of(static_cast<pid_t>(pid));
      if (parent > 0) children_of.emplace(parent, static_cast<pid_t>(pid));
    }
    closedir(proc);
  }
  std::vector<pid_t> found;
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    std::vector<pid_t> next;
    for (pid_t parent : frontier) {
      const auto [first, last] = children_of.equal_range(parent);
      for (auto it = first; it != last; ++it) {
        found.push_back(it->second);
        next.push_back(it->second);
      }
    }
    frontier = std::move(next);
  }
  return found;
}

std::string command_name(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

std::string command_line(pid_t pid) {
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') text.pop_back();
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

int kill_descendants_except(int number, pid_t spared, const std::vector<Process*>& known,
                            double seconds) {
  std::set<pid_t> keep;
  if (spared > 0) {
    keep.insert(spared);
    for (pid_t pid : descendants_of(spared)) keep.insert(pid);
  }
  std::vector<pid_t> victims;
  for (pid_t pid : descendants_of(getpid())) {
    if (!keep.count(pid)) victims.push_back(pid);
  }
  for (pid_t pid : victims) ::kill(pid, number);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  for (pid_t pid : victims) {
    while (std::chrono::steady_clock::now() < deadline && ::kill(pid, 0) == 0) {
      reap_children(known);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  reap_children(known);
  return static_cast<int>(victims.size());
}

CommandResult run_to_end(const std::vector<std::string>& argv, double seconds) {
  SpawnOptions spawn;
  spawn.pipe_output = true;
  spawn.own_process_group = false;
  Process process = Process::spawn(argv, spawn);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  CommandResult result;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd output{process.output_fd(), POLLIN, 0};
    if (::poll(&output, 1, 100) <= 0) continue;
    const ssize_t n = ::read(process.output_fd(), buffer, sizeof buffer);
    if (n > 0) result.output.append(buffer, static_cast<size_t>(n));
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
  const double left =
      std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
  result.finished = process.wait_for(std::max(0.0, left));
  result.status = process.wait_status();
  return result;  // Process's destructor kills and reaps what still runs
}

std::string describe_rank_failure(int code) {
  if (code == hds::common::kExitRankLost) return "a rank hung or was lost (exit 4)";
  const int number = code - hds::common::kExitSignalBase;
  if (number <= 0) return "";
  return "a rank was killed by signal " + std::to_string(number) + " (" + strsignal(number) + ")";
}

std::string describe_launcher_end(const std::string& program, int status) {
  const std::string ranks = WIFEXITED(status) ? describe_rank_failure(exit_code_of(status)) : "";
  return program + " " + describe_wait_status(status) + (ranks.empty() ? "" : ": " + ranks);
}

hds::common::CaughtSignals catch_stop_signals() {
  return hds::common::CaughtSignals({SIGINT, SIGTERM, SIGHUP, SIGUSR1}, nullptr,
                                    /*ignore_sigpipe=*/true);
}

}  // namespace hds::launch

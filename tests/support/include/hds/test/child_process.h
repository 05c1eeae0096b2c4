// A program of the project run as a real child process, for tests: fork + exec with stdout and
// stderr captured through one pipe or a pseudo-terminal, waits with deadlines, and whether a
// shared-memory segment exists.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace hds::test {

// Where a child's stdout and stderr go: one pipe, or a pseudo-terminal (the child then sees a
// terminal of `kTerminalColumns` columns, as a person at a shell would).
enum class ChildOutput { pipe, terminal };
constexpr int kTerminalColumns = 120;

// A child process running `binary` with `arguments`; its stdout and stderr go to one pipe or
// terminal. Killed with SIGKILL (and reaped) on destruction unless already reaped.
class ChildProcess {
 public:
  ChildProcess(const std::string& binary, const std::vector<std::string>& arguments,
               ChildOutput where = ChildOutput::pipe) {
    int output[2];
    if (where == ChildOutput::pipe) {
      if (pipe2(output, O_CLOEXEC) != 0) std::abort();
    } else {
      const winsize size{40, kTerminalColumns, 0, 0};
      if (openpty(&output[0], &output[1], nullptr, nullptr, &size) != 0) std::abort();
      fcntl(output[0], F_SETFD, FD_CLOEXEC);
    }
    pid_ = fork();
    if (pid_ == 0) {
      if (where == ChildOutput::terminal) setsid();  // the terminal becomes its own
      dup2(output[1], STDOUT_FILENO);
      dup2(output[1], STDERR_FILENO);
      if (where == ChildOutput::terminal) close(output[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const std::string& argument : arguments)
        argv.push_back(const_cast<char*>(argument.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(output[1]);
    output_fd_ = output[0];
  }
  ~ChildProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(output_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends signal `number` unless the child was reaped (its pid may belong to another by now).
  void signal(int number) const {
    if (!reaped_) kill(pid_, number);
  }

  // Reads output until it contains `text` or `seconds` pass; true when found.
  bool wait_for_output(const std::string& text, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + to_duration(seconds);
    while (output_.find(text) == std::string::npos) {
      if (!read_some(deadline)) return false;
    }
    return true;
  }
  // Waits up to `seconds` for the child to exit and reaps it; the wait status, or none on
  // timeout. Collects the rest of its output.
  std::optional<int> wait_exit(double seconds) {
    if (reaped_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + to_duration(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = status;
        while (read_some(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
        }
        return status;
      }
      read_some(std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }
  // Kills with SIGKILL and reaps at once (the pid then no longer exists).
  void kill_and_reap() {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    reaped_ = true;
  }
  const std::string& output() const { return output_; }

 private:
  static std::chrono::steady_clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(seconds));
  }
  // Appends what is readable before `deadline`; false at end of output or timeout.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{output_fd_, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(std::max<long long>(left.count(), 0))) <= 0) {
      return false;
    }
    char buffer[4096];
    const ssize_t n = read(output_fd_, buffer, sizeof buffer);
    if (n <= 0) return false;
    output_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int output_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string output_;
};

inline bool shm_exists(const std::string& ring_name) {
  struct stat status {};
  return stat(("/dev/shm" + ring_name).c_str(), &status) == 0;
}

}  // namespace hds::test

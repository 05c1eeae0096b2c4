// Signals, one mechanism for every program: while a CaughtSignals lives, the signals it was given
// are recorded (a flag per signal, read from any thread) and written to a self-pipe (for poll
// loops), and an optional async-signal-safe hook runs; the previous dispositions come back on
// destruction. One instance per process at a time (a second one throws).
#pragma once

#include <signal.h>

#include <initializer_list>
#include <vector>

namespace hds::common {

class CaughtSignals {
 public:
  // A function a signal handler may call: it must only touch lock-free atomics or write(2).
  using Hook = void (*)(int number);

  // Catches `numbers` (each at most 63); `ignore_sigpipe` ignores SIGPIPE meanwhile (a closed
  // terminal or pipe then cannot kill a process before it has cleaned up). Throws
  // std::runtime_error when the pipe cannot be made or another instance lives.
  explicit CaughtSignals(std::initializer_list<int> numbers, Hook hook = nullptr,
                         bool ignore_sigpipe = false);
  ~CaughtSignals();
  CaughtSignals(const CaughtSignals&) = delete;
  CaughtSignals& operator=(const CaughtSignals&) = delete;

  // Readable when a signal came.
  int fd() const { return fds_[0]; }
  // The signals received since the last call, in order.
  std::vector<int> take();
  // Whether `number` came since construction (whatever take() consumed).
  bool received(int number) const;

 private:
  std::vector<int> numbers_;
  std::vector<struct sigaction> previous_;
  bool ignore_sigpipe_;
  struct sigaction previous_pipe_ {};
  int fds_[2] = {-1, -1};
};

}  // namespace hds::common

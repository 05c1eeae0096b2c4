#include "hds/common/signals.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hds::common {

namespace {

// The handler's view of the live instance: plain atomics, as a handler may read nothing else.
std::atomic<int> write_fd{-1};
std::atomic<CaughtSignals::Hook> hook{nullptr};
std::atomic<uint64_t> received_mask{0};
std::atomic<bool> instance_alive{false};

extern "C" void note_signal(int number) {
  const int saved_errno = errno;
  received_mask.fetch_or(uint64_t{1} << number);
  const unsigned char byte = static_cast<unsigned char>(number);
  [[maybe_unused]] const ssize_t written = ::write(write_fd.load(), &byte, 1);
  if (const CaughtSignals::Hook run = hook.load()) run(number);
  errno = saved_errno;
}

}  // namespace

CaughtSignals::CaughtSignals(std::initializer_list<int> numbers, Hook on_signal,
                             bool ignore_sigpipe)
    : numbers_(numbers), previous_(numbers.size()), ignore_sigpipe_(ignore_sigpipe) {
  for (int number : numbers_) {
    if (number <= 0 || number > 63) {
      throw std::runtime_error("CaughtSignals: signal " + std::to_string(number) + " out of range");
    }
  }
  if (instance_alive.exchange(true)) {
    throw std::runtime_error("CaughtSignals: another instance is alive in this process");
  }
  if (pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    instance_alive = false;
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  received_mask = 0;
  write_fd = fds_[1];
  hook = on_signal;
  struct sigaction action {};
  action.sa_handler = note_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (size_t i = 0; i < numbers_.size(); ++i) sigaction(numbers_[i], &action, &previous_[i]);
  if (ignore_sigpipe_) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &previous_pipe_);
  }
}

CaughtSignals::~CaughtSignals() {
  for (size_t i = 0; i < numbers_.size(); ++i) sigaction(numbers_[i], &previous_[i], nullptr);
  if (ignore_sigpipe_) sigaction(SIGPIPE, &previous_pipe_, nullptr);
  hook = nullptr;
  write_fd = -1;
  ::close(fds_[0]);
  ::close(fds_[1]);
  instance_alive = false;
}

std::vector<int> CaughtSignals::take() {
  std::vector<int> numbers;
  unsigned char byte;
  while (::read(fds_[0], &byte, 1) == 1) numbers.push_back(byte);
  return numbers;
}

bool CaughtSignals::received(int number) const {
  return number > 0 && number <= 63 && (received_mask.load() >> number) & 1;
}

}  // namespace hds::common

// Waiting for a condition in tests that watch other processes or threads.
#pragma once

#include <chrono>
#include <thread>

namespace hds::test {

// Polls `condition` every 10 ms for up to `seconds`.
template <class Condition>
bool eventually(Condition condition, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace hds::test

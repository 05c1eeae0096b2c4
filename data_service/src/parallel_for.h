// A minimal parallel loop for independent items (films): each index writes only its own result
// slot, so the outcome does not depend on the thread count or scheduling.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace hds::data::detail {

// Calls fn(i) for i in [0, count) on up to `max_threads` threads (at least one). If any call
// throws, the exception of the lowest failing index is rethrown (deterministic error messages).
template <class Fn>
void parallel_for(size_t count, unsigned max_threads, Fn fn) {
  const size_t threads = std::min<size_t>(count, std::max(1u, max_threads));
  std::vector<std::exception_ptr> errors(count);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (std::thread& worker : workers) worker.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace hds::data::detail

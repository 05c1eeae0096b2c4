// The patch production benchmark.
#include "hds/data_server/produce_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>

#include "hds/data/dataset.h"
#include "hds/data/patch_sampler.h"

namespace hds::data_server {

using hds::data::Dataset;
using hds::data::load_dataset;
using hds::data::PatchSampler;
using hds::data::sampler_options_for;
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWarmupBatches = 2;  // per thread: first-touch allocations are not timed

double seconds_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

struct ThreadTiming {
  long long patches = 0;
  double seconds = 0;
  Clock::time_point end;
};

// Thread `thread` of `threads` makes batches thread, thread + threads, ... of the sampler's
// stream of (epoch, step), so no two threads make the same batch.
// It warms up, says it is ready, and times its batches once `start_gate` opens.
ThreadTiming produce(const PatchSampler& sampler, int thread, int threads, int batches,
                     std::promise<void> ready, const std::shared_future<void>& start_gate) {
  const int steps = sampler.steps_per_epoch();
  auto make = [&](long long index) {
    return sampler.batch(static_cast<int>(1 + index / steps), static_cast<int>(index % steps));
  };
  for (int i = 0; i < kWarmupBatches; ++i) make(thread + static_cast<long long>(i) * threads);
  ready.set_value();
  start_gate.wait();
  ThreadTiming timing;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < batches; ++i) {
    timing.patches += make(thread + static_cast<long long>(i) * threads).count;
  }
  timing.end = Clock::now();
  timing.seconds = seconds_between(start, timing.end);
  return timing;
}

}  // namespace

ProduceBenchResult run_produce_benchmark(const hds::config::Config& config,
                                         const ProduceBenchOptions& options) {
  if (options.threads < 1 || options.threads > kMaxProduceBenchThreads) {
    throw std::invalid_argument("bench produce: threads " + std::to_string(options.threads) +
                                " is outside 1.." + std::to_string(kMaxProduceBenchThreads));
  }
  if (options.batches < 1) {
    throw std::invalid_argument("bench produce: batches " + std::to_string(options.batches) +
                                " must be at least 1");
  }
  ProduceBenchResult result;
  result.options = options;
  const Clock::time_point load_start = Clock::now();
  const Dataset dataset = load_dataset(config.data());
  result.load_seconds = seconds_between(load_start, Clock::now());
  result.source = config.data().source();
  result.films = static_cast<int>(dataset.train.size());
  result.film_rows = config.data().image_rows();
  result.film_cols = config.data().image_cols();
  result.cache_hits = dataset.cache_hits;
  result.cache_misses = dataset.cache_misses;

  const PatchSampler sampler(dataset.train, sampler_options_for(config));
  result.patch_rows = sampler.options().patch_rows;
  result.patch_cols = sampler.options().patch_cols;
  result.batch_size = sampler.options().batch_size;

  // Every thread warms up before the common start: the wall time covers timed batches only.
  std::promise<void> open_gate;
  const std::shared_future<void> start_gate = open_gate.get_future().share();
  std::vector<std::future<void>> ready;
  std::vector<std::future<ThreadTiming>> timings;
  for (int thread = 0; thread < options.threads; ++thread) {
    std::promise<void> thread_ready;
    ready.push_back(thread_ready.get_future());
    timings.push_back(std::async(std::launch::async, produce, std::cref(sampler), thread,
                                 options.threads, options.batches, std::move(thread_ready),
                                 start_gate));
  }
  for (auto& thread : ready) thread.wait();
  const Clock::time_point start = Clock::now();
  open_gate.set_value();
  long long patches = 0;
  Clock::time_point end = start;
  for (auto& timing : timings) {
    const ThreadTiming thread = timing.get();  // rethrows a thread's exception
    patches += thread.patches;
    end = std::max(end, thread.end);
    result.thread_patches_per_second.push_back(thread.patches / thread.seconds);
  }
  result.total_patches_per_second = patches / seconds_between(start, end);
  return result;
}

double ProduceBenchResult::median_patches_per_second_per_thread() const {
  if (thread_patches_per_second.empty()) return 0;
  std::vector<double> sorted = thread_patches_per_second;
  std::sort(sorted.begin(), sorted.end());
  const size_t middle = sorted.size() / 2;
  return sorted.size() % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

std::string ProduceBenchResult::json() const {
  // The per-thread list has up to kMaxProduceBenchThreads entries: built piece by piece.
  auto format = [](const char* pattern, auto... values) {
    char text[512];
    std::snprintf(text, sizeof text, pattern, values...);
    return std::string(text);
  };
  std::string line = format(
      "{\"bench\": \"produce\", \"source\": \"%s\", \"films\": %d, \"film_rows\": %d, "
      "\"film_cols\": %d, \"load_seconds\": %.3f, \"cache_hits\": %d, \"cache_misses\": %d, "
      "\"threads\": %d, \"batches_per_thread\": %d, \"batch_size\": %d, \"patch_rows\": %d, "
      "\"patch_cols\": %d, \"patches_per_s_per_thread\": %.1f, \"thread_patches_per_s\": [",
      source.c_str(), films, film_rows, film_cols, load_seconds, cache_hits, cache_misses,
      options.threads, options.batches, batch_size, patch_rows, patch_cols,
      median_patches_per_second_per_thread());
  for (size_t i = 0; i < thread_patches_per_second.size(); ++i) {
    line += format(i == 0 ? "%.1f" : ", %.1f", thread_patches_per_second[i]);
  }
  line += format("], \"total_patches_per_s\": %.1f, \"target_patches_per_s_per_core\": 2000}",
                 total_patches_per_second);
  return line;
}

}  // namespace hds::data_server

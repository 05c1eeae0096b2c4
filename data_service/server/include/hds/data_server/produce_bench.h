// `hds-data-service bench produce`: augmented patches per second per worker thread, as the
// service's workers make them. The job's dataset is loaded through load_dataset (so from the
// preprocessed film cache when the source has one), then `threads` threads each make their own
// PatchSampler batches (train.batch_size patches of data.patch_rows x data.patch_cols, flips and
// balanced crops as docs/design.md §4) for a fixed number of batches, all starting together. Not
// thread-safe (starts its own threads and joins them).
#pragma once

#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::data_server {

struct ProduceBenchOptions {
  int threads = 1;    // producing threads, 1 .. kMaxProduceBenchThreads
  int batches = 200;  // timed batches per thread, after warm-up
};

constexpr int kMaxProduceBenchThreads = 256;

struct ProduceBenchResult {
  ProduceBenchOptions options;
  std::string source;  // data.source
  int films = 0;       // in the training split, which the batches sample
  int film_rows = 0;
  int film_cols = 0;
  int patch_rows = 0;
  int patch_cols = 0;
  int batch_size = 0;
  double load_seconds = 0;  // load_dataset, cache included
  int cache_hits = 0;
  int cache_misses = 0;
  // Patches per second of each thread over its own timed batches, in thread order.
  std::vector<double> thread_patches_per_second;
  // All threads' patches over the wall time from the common start to the last thread's end.
  double total_patches_per_second = 0;

  double median_patches_per_second_per_thread() const;
  std::string json() const;  // one line
};

// Throws std::invalid_argument for options out of range, and whatever load_dataset and
// PatchSampler throw for the configuration (DataError, ConfigError).
ProduceBenchResult run_produce_benchmark(const hds::config::Config& config,
                                         const ProduceBenchOptions& options);

}  // namespace hds::data_server

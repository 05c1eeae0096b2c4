// `hds-trainer bench`: the time of one full training step (forward, both losses, backward, SGD)
// on random data, as a median over several steps after warm-up; with --rounds, several such
// medians from one process (one warm-up, one model: no start-up cost per figure). With --sync, also
// the cost of the gradient sync of a data-parallel run (gradient_sync.h) on the ranks of `world`:
// the step with and without it, and the all-reduce of the whole gradient buffer alone. The step
// computes as fit()'s does (step_compute.h: train.precision, channels_last, cudnn_autotune).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

struct BenchOptions {
  int batch = 8;
  int height = 512;
  int width = 384;
  int steps = 10;
  int warmup = 2;
  std::string device = "cpu";
  int threads = 0;  // intra-op threads; 0 keeps LibTorch's choice
  bool sync = false;
  int rounds = 1;  // measurements after the one warm-up, each its own result
};

struct BenchResult {
  double median_step_ms = 0;  // without gradient sync
  double patches_per_second = 0;
  int threads = 0;
  std::string precision;  // train.precision's name
  bool channels_last = false;
  // With BenchOptions::sync only:
  int world_size = 1;
  std::string backend;
  int buckets = 0;
  int64_t gradient_bytes = 0;
  double median_step_sync_ms = 0;    // the same step with the gradient sync
  double exposed_sync_fraction = 0;  // (with - without) / with
  double median_allreduce_ms = 0;    // all buckets summed and written back, no backward
  double algorithm_gb_per_s = 0;     // gradient_bytes / allreduce time
  double bus_gb_per_s = 0;           // algorithm bandwidth x 2(n-1)/n (ring all-reduce traffic)
};

// Uses `config`'s model, loss and distributed block (the paper's unless told otherwise). Every
// rank of `world` must call it with the same options. One result per round.
std::vector<BenchResult> bench_training_step(const hds::config::Config& config,
                                             const BenchOptions& options, const World& world);

// One line of JSON (no newline) with the options and the results of round `round` (from 1).
std::string to_json_line(const BenchOptions& options, const BenchResult& result, int round);

}  // namespace hds::trainer

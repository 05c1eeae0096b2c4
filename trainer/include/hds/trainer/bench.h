// `hds-trainer bench`: the time of one full training step (forward, both losses, backward, SGD)
// on random data, as a median over several steps after warm-up.
#pragma once

#include <string>

#include "config.pb.h"

namespace hds::trainer {

struct BenchOptions {
  int batch = 8;
  int height = 512;
  int width = 384;
  int steps = 10;
  int warmup = 2;
  std::string device = "cpu";
  int threads = 0;  // intra-op threads; 0 keeps LibTorch's choice
};

struct BenchResult {
  double median_step_ms = 0;
  double patches_per_second = 0;
  int threads = 0;
};

// Uses `config`'s model and loss (the paper's unless told otherwise).
BenchResult bench_training_step(const hds::config::Config& config, const BenchOptions& options);

}  // namespace hds::trainer

// Not a test: times PatchSampler::batch at the paper's sizes (8 patches of 512x384 from
// 1024x512 phantom films). Run the Release build: build/tests/bench/hds_data_bench [films]
// [batches]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "hds/data/dataset.h"
#include "hds/data/patch_sampler.h"

int main(int argc, char** argv) {
  const int films = argc > 1 ? std::atoi(argv[1]) : 24;
  const int batches = argc > 2 ? std::atoi(argv[2]) : 200;
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  hds::config::DataConfig config;  // phantom, 1024 x 512
  config.mutable_phantom()->set_train_count(films);
  config.mutable_phantom()->set_val_count(0);
  config.mutable_phantom()->set_test_count(0);
  auto start = Clock::now();
  const hds::data::Dataset dataset = hds::data::load_dataset(config);
  std::printf("load_dataset: %d phantom films of 1024x512 in %.3f s (%.1f ms/film)\n", films,
              seconds_since(start), 1e3 * seconds_since(start) / films);

  const hds::data::PatchSampler sampler(dataset.train, hds::data::SamplerOptions{});
  const int steps = sampler.steps_per_epoch();
  long checksum = 0;
  start = Clock::now();
  for (int i = 0; i < batches; ++i) {
    const hds::data::PatchBatch batch = sampler.batch(1 + i / steps, i % steps);
    checksum += batch.labels.empty() ? 0 : batch.labels[0] + batch.count;
  }
  const double elapsed = seconds_since(start);
  std::printf(
      "PatchSampler::batch: %d batches (8 x 512x384) in %.3f s: %.2f ms/batch, "
      "%.0f patches/s (checksum %ld)\n",
      batches, elapsed, 1e3 * elapsed / batches, batches * 8 / elapsed, checksum);
}

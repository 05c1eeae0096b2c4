// Where the training loop gets its batches. The in-process source samples patches itself; the
// shared-memory client of hds-data-service implements the same interface, so the loop does not
// change when data moves to another process.
#pragma once

#include <memory>
#include <vector>

#include "config.pb.h"
#include "hds/data/patch_sampler.h"

namespace hds::trainer {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int steps_per_epoch() const = 0;
  // Batch `step` (0-based) of 1-based `epoch` for this rank.
  virtual hds::data::PatchBatch batch(int epoch, int step) = 0;
};

// Samples patches in this process from already loaded training films. Not thread-safe.
class InProcessBatchSource : public BatchSource {
 public:
  InProcessBatchSource(const std::vector<hds::data::Film>& films, hds::data::SamplerOptions options,
                       int rank = 0, int world_size = 1)
      : sampler_(films, options), rank_(rank), world_size_(world_size) {}
  int steps_per_epoch() const override { return sampler_.steps_per_epoch(world_size_); }
  hds::data::PatchBatch batch(int epoch, int step) override {
    return sampler_.batch(epoch, step, rank_, world_size_);
  }

 private:
  hds::data::PatchSampler sampler_;
  int rank_;
  int world_size_;
};

// The source `config` asks for: a ShmBatchSource (shm_batch_source.h) connected to the service
// at data.service_socket when that is set, otherwise an InProcessBatchSource over `train_films`
// (which must then outlive it).
std::unique_ptr<BatchSource> make_batch_source(const hds::config::Config& config,
                                               const std::vector<hds::data::Film>& train_films,
                                               const hds::data::SamplerOptions& options,
                                               int rank = 0, int world_size = 1);

}  // namespace hds::trainer

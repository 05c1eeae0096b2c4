// Where the training loop gets its batches (hds/data_client/batch_source.h): the in-process
// source samples patches itself; the data service's client (hds/data_client/shm_batch_source.h)
// streams them from another process. The loop sees only the interface.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/data/patch_sampler.h"
#include "hds/data_client/batch_source.h"

namespace hds::trainer {

using hds::data_client::BatchSource;

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

// The source `config` asks for: a data_client::ShmBatchSource connected to the service
// at data.service_socket when that is set, otherwise an InProcessBatchSource over `train_films`
// (which must then outlive it). A service source tells `on_service_lost` of a lost service it
// waits to replace and `on_reconnected` of the reconnection (data.service_reconnect_seconds).
std::unique_ptr<BatchSource> make_batch_source(
    const hds::config::Config& config, const std::vector<hds::data::Film>& train_films,
    const hds::data::SamplerOptions& options, int rank = 0, int world_size = 1,
    std::function<void(const std::string&)> on_service_lost = {},
    std::function<void(const std::string&)> on_reconnected = {});

}  // namespace hds::trainer

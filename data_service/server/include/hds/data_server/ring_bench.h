// `hds-data-service bench ring`: throughput of the shared-memory ring between two processes (this
// one producing, a forked child consuming, each copying a whole batch per slot as the service and
// the trainer do) as a ratio to one plain memcpy of the same bytes in this process, measured in
// the same run (the better of a run before and a run after the ring; source and destination
// reused, so they stay in cache). Not thread-safe: it forks, so call it before starting threads.
#pragma once

#include <cstdint>
#include <string>

#include "config.pb.h"
#include "hds/data_server/data_server.h"

namespace hds::data_server {

// Defaults: the paper's batches (the configuration schema's) in `serve`'s rings.
struct RingBenchOptions {
  int batches = 400;  // timed batches, after warm-up
  int patches = hds::config::TrainConfig::default_instance().batch_size();  // per batch
  int rows = hds::config::DataConfig::default_instance().patch_rows();
  int cols = hds::config::DataConfig::default_instance().patch_cols();
  uint32_t slots = kDefaultSlotsPerRank;
};

struct RingBenchResult {
  RingBenchOptions options;
  uint64_t batch_bytes = 0;  // what one batch moves: images, masks, labels, ids, crops
  double ring_batches_per_second = 0;
  double memcpy_batches_per_second = 0;  // one batch, source and destination reused (cached)
  // For context: the same copy between buffers too large to stay in cache, as the ring's
  // slots are (4 slots of 8 x 512 x 384 are 32 MiB).
  double dram_memcpy_batches_per_second = 0;
  double ratio() const { return ring_batches_per_second / memcpy_batches_per_second; }
  std::string json() const;  // one line
};

// Throws hds::transport::RingError when the ring fails or the consumer sees a wrong batch.
RingBenchResult run_ring_benchmark(const RingBenchOptions& options);

}  // namespace hds::data_server

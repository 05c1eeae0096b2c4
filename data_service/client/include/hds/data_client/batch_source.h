// Where a training loop gets its batches: one interface for every source, so the loop does not
// change when the data moves to another process. The data service's client (shm_batch_source.h)
// implements it here; the trainer's in-process sampler implements it on its side.
#pragma once

#include "hds/transport/patch_batch.h"

namespace hds::data_client {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int steps_per_epoch() const = 0;
  // Batch `step` (0-based) of 1-based `epoch` for this rank.
  virtual hds::transport::PatchBatch batch(int epoch, int step) = 0;
};

}  // namespace hds::data_client

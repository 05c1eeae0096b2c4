// Where a training loop gets its batches: one interface for every source, so the loop does not
// change when the data moves to another process. The data service's client (shm_batch_source.h)
// implements it here; the trainer's in-process sampler implements it on its side.
#pragma once

#include <optional>

#include "hds/transport/patch_batch.h"

namespace hds::data_client {

// The grey-level mean and std that normalised a source's patches.
struct Normalisation {
  double mean = 0;
  double std = 1;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The normalisation of the patches when the source decides it (a data service announces its
  // training split's); none when the caller normalised the films it gave.
  virtual std::optional<Normalisation> normalisation() const { return std::nullopt; }
  virtual int steps_per_epoch() const = 0;
  // Batch `step` (0-based) of 1-based `epoch` for this rank.
  virtual hds::transport::PatchBatch batch(int epoch, int step) = 0;
};

}  // namespace hds::data_client

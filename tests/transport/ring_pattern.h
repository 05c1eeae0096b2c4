// The patterned batches the ring peer (ring_peer.cpp) publishes and the ring tests expect.
#pragma once

#include <cstdint>

#include "hds/transport/patch_batch.h"

namespace hds::transport::testing {

// The batch the ring peer publishes as ring sequence `sequence`: every element depends on the
// sequence and its position, and the count varies from 0 to `capacity`, so a lost, repeated,
// reordered or torn batch shows.
inline PatchBatch pattern_batch(uint64_t sequence, int rows, int cols, int capacity) {
  PatchBatch batch;
  batch.count = static_cast<int>(sequence % (capacity + 1));
  batch.rows = rows;
  batch.cols = cols;
  const size_t pixels = size_t(batch.count) * rows * cols;
  batch.images.resize(pixels);
  batch.masks.resize(pixels);
  for (size_t i = 0; i < pixels; ++i) {
    batch.images[i] = static_cast<float>((sequence * 7919 + i) % 65521);
    batch.masks[i] = static_cast<uint8_t>((sequence + i) % 3 == 0);
  }
  for (int p = 0; p < batch.count; ++p) {
    batch.labels.push_back(static_cast<uint8_t>((sequence + p) % 2));
    batch.sample_indices.push_back(static_cast<int32_t>(sequence * 16 + p));
    batch.crop_rows.push_back(static_cast<int32_t>(sequence % 1000 + p));
    batch.crop_cols.push_back(static_cast<int32_t>(sequence % 777 + 2 * p));
  }
  return batch;
}

// The (epoch, step) the ring peer tags sequence `sequence` with: 5 steps an epoch from epoch 1.
inline int pattern_epoch(uint64_t sequence) { return static_cast<int>(1 + sequence / 5); }
inline int pattern_step(uint64_t sequence) { return static_cast<int>(sequence % 5); }

}  // namespace hds::transport::testing

// What the data service sends a trainer rank: one batch of training patches, laid out as a
// shared-memory ring slot holds it (shm_ring_layout.h). Plain data, no behaviour.
#pragma once

#include <cstdint>
#include <vector>

namespace hds::transport {

struct PatchBatch {
  int count = 0;  // patches in this batch (the epoch's last batch may be smaller)
  int rows = 0;
  int cols = 0;
  std::vector<float> images;            // count x rows x cols, normalised
  std::vector<uint8_t> masks;           // count x rows x cols, 0/1
  std::vector<uint8_t> labels;          // count: 1 when the patch holds a mass pixel
  std::vector<int32_t> sample_indices;  // index of each patch's film in the training split
  std::vector<int32_t> crop_rows;       // top-left corner of the crop in the flipped film
  std::vector<int32_t> crop_cols;
};

}  // namespace hds::transport

// Training patches as DESIGN §4: random row/column flips, then a balanced crop centred on a mass
// pixel (probability mass_centre_probability, when the film has one) or on any non-mass pixel.
// Every random choice comes from a counter-based generator keyed by (seed, epoch, sample index),
// so a batch is a pure function of (epoch, batch index, rank, world size): the same on any thread
// count, after a resume, and when the job is re-sharded. Thread-safe (const after construction).
#pragma once

#include <cstdint>
#include <vector>

#include "hds/data/dataset.h"

namespace hds::data {

// One batch of patches, laid out as a shared-memory ring slot will be.
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

struct SamplerOptions {
  int patch_rows = 512;
  int patch_cols = 384;
  int batch_size = 8;  // per rank
  float flip_probability = 0.5f;
  float mass_centre_probability = 0.5f;
  uint64_t seed = 1;
};

class PatchSampler {
 public:
  // `films` must outlive the sampler. Throws DataError when a film is smaller than a patch or
  // the list is empty.
  PatchSampler(const std::vector<Film>& films, SamplerOptions options);

  // Each epoch is one patch per film in an order shuffled by (seed, epoch). Global step k takes
  // positions [k*B*W, (k+1)*B*W) of that order; rank r takes its B-sized share of it. The last
  // step is smaller; it is kept.
  int steps_per_epoch(int world_size = 1) const;

  // Batch `step` (0-based) of 1-based `epoch` for `rank` of `world_size`.
  PatchBatch batch(int epoch, int step, int rank = 0, int world_size = 1) const;

  const SamplerOptions& options() const { return options_; }

 private:
  const std::vector<Film>& films_;
  SamplerOptions options_;
  std::vector<std::vector<int32_t>> mass_pixels_;  // sorted flat indices of each film's mass pixels
};

}  // namespace hds::data

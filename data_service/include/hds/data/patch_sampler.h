// Training patches as docs/design.md §4: random row/column flips, then a balanced crop centred on a
// mass pixel (probability mass_centre_probability, when the film has one) or on any non-mass pixel.
// Every random choice comes from a counter-based generator keyed by (seed, epoch, sample index),
// so a batch is a pure function of (epoch, batch index, rank, world size): the same on any thread
// count, after a resume, and when the job is re-sharded (a film's patch in an epoch does not
// depend on the world size; only which rank receives it does). Here the sample index is the
// film's index in the training split. Thread-safe (const after construction).
#pragma once

#include <cstdint>
#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/transport/patch_batch.h"

namespace hds::data {

// The sampler fills the transport's payload directly: what a ring slot carries.
using hds::transport::PatchBatch;

// Defaults: the configuration schema's (sampler_options_for fills them from a configuration).
struct SamplerOptions {
  int patch_rows = hds::config::DataConfig::default_instance().patch_rows();
  int patch_cols = hds::config::DataConfig::default_instance().patch_cols();
  int batch_size = hds::config::TrainConfig::default_instance().batch_size();  // per rank
  float flip_probability = hds::config::DataConfig::default_instance().flip_probability();
  float mass_centre_probability =
      hds::config::DataConfig::default_instance().mass_centre_probability();
  uint64_t seed = hds::config::TrainConfig::default_instance().seed();
};

// Where one patch comes from: the random choices of docs/design.md §4 for one film in one epoch.
struct PatchPlan {
  bool flip_rows = false;
  bool flip_cols = false;
  bool mass_centred = false;  // the centre was drawn among the mass pixels
  int centre_row = 0;         // the drawn centre, in the flipped film
  int centre_col = 0;
  int crop_row = 0;  // top-left corner of the window after shifting it inside the film
  int crop_col = 0;
};

// The sampler options of a job: patch size and augmentation from `data`, batch size and seed
// from `train`.
SamplerOptions sampler_options_for(const hds::config::Config& config);

class PatchSampler {
 public:
  // `films` must outlive the sampler. Throws DataError when a film is smaller than a patch or
  // the list is empty, std::invalid_argument for a non-positive patch or batch size.
  PatchSampler(const std::vector<Film>& films, SamplerOptions options);

  // Each epoch is one patch per film in an order shuffled by (seed, epoch). Global step k takes
  // positions [k*B*W, (k+1)*B*W) of that order; rank r takes its B-sized share of it. The last
  // step is smaller; it is kept. Returns ceil(films / (B*W)); throws std::invalid_argument for
  // world_size < 1.
  int steps_per_epoch(int world_size = 1) const;

  // Batch `step` (0-based) of 1-based `epoch` for `rank` of `world_size`. A high rank may get
  // count 0 on the last step. Throws std::invalid_argument for epoch < 1, a step outside
  // [0, steps_per_epoch(world_size)) or a rank outside [0, world_size).
  PatchBatch batch(int epoch, int step, int rank = 0, int world_size = 1) const;

  const SamplerOptions& options() const { return options_; }

  // The epoch's order of film indices: a Fisher-Yates shuffle keyed by (seed, epoch).
  std::vector<int32_t> epoch_order(int epoch) const;

  // The random choices for film `film_index` in `epoch`, keyed by (seed, epoch, film index):
  // draw 0 decides the row flip, 1 the column flip, 2 mass-or-not, 3 the pixel. batch() uses it.
  PatchPlan plan_patch(int epoch, int film_index) const;

 private:
  void check_batch_arguments(int epoch, int step, int rank, int world_size) const;
  void copy_patch(const Film& film, const PatchPlan& plan, PatchBatch& batch, int slot) const;

  const std::vector<Film>& films_;
  SamplerOptions options_;
  // Sorted flat indices of each film's mass pixels, in the unflipped film.
  std::vector<std::vector<int32_t>> mass_pixels_;
};

}  // namespace hds::data

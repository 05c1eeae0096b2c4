#include "hds/data/patch_sampler.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "counter_rng.h"

namespace hds::data {
namespace {

using detail::CounterRng;
using detail::derive_key;
using detail::domain;
using detail::RngDomain;

void check_film(const Film& film, const SamplerOptions& options) {
  const size_t pixels = static_cast<size_t>(film.rows) * film.cols;
  if (film.image.size() != pixels || film.mask.size() != pixels)
    throw DataError("film " + film.id + ": " + std::to_string(film.rows) + "x" +
                    std::to_string(film.cols) + " but " + std::to_string(film.image.size()) +
                    " image and " + std::to_string(film.mask.size()) + " mask values");
  if (film.rows < options.patch_rows || film.cols < options.patch_cols)
    throw DataError("film " + film.id + " is " + std::to_string(film.rows) + "x" +
                    std::to_string(film.cols) + ", smaller than the " +
                    std::to_string(options.patch_rows) + "x" + std::to_string(options.patch_cols) +
                    " patch");
}

std::vector<int32_t> mass_pixel_indices(const Film& film) {
  std::vector<int32_t> indices;
  for (size_t i = 0; i < film.mask.size(); ++i)
    if (film.mask[i] != 0) indices.push_back(static_cast<int32_t>(i));
  return indices;
}

// The flat index of the j-th (0-based) pixel that is not in the sorted list `mass`. Below mass[i]
// lie mass[i] - i non-mass pixels; that count never decreases with i, so the number of mass
// pixels before the answer is found by binary search, and the answer is j plus that number.
int64_t nth_non_mass_pixel(const std::vector<int32_t>& mass, int64_t j) {
  size_t low = 0, high = mass.size();  // invariant: the count lies in [low, high]
  while (low < high) {
    const size_t middle = low + (high - low) / 2;
    if (mass[middle] - static_cast<int64_t>(middle) <= j)
      low = middle + 1;
    else
      high = middle;
  }
  return j + static_cast<int64_t>(low);
}

// Start of a window of `size` centred on `centre`, moved back inside [0, extent) whole.
int window_start(int centre, int size, int extent) {
  return std::clamp(centre - size / 2, 0, extent - size);
}

}  // namespace

PatchSampler::PatchSampler(const std::vector<Film>& films, SamplerOptions options)
    : films_(films), options_(options) {
  if (options_.patch_rows <= 0 || options_.patch_cols <= 0 || options_.batch_size <= 0)
    throw std::invalid_argument("PatchSampler: patch " + std::to_string(options_.patch_rows) + "x" +
                                std::to_string(options_.patch_cols) + ", batch size " +
                                std::to_string(options_.batch_size) + ": all must be positive");
  if (films_.empty()) throw DataError("PatchSampler: no films to sample from");
  mass_pixels_.reserve(films_.size());
  for (const Film& film : films_) {
    check_film(film, options_);
    mass_pixels_.push_back(mass_pixel_indices(film));
  }
}

int PatchSampler::steps_per_epoch(int world_size) const {
  if (world_size < 1)
    throw std::invalid_argument("world_size = " + std::to_string(world_size) + ": must be >= 1");
  const int64_t per_step = static_cast<int64_t>(options_.batch_size) * world_size;
  return static_cast<int>((static_cast<int64_t>(films_.size()) + per_step - 1) / per_step);
}

std::vector<int32_t> PatchSampler::epoch_order(int epoch) const {
  if (epoch < 1) throw std::invalid_argument("epoch = " + std::to_string(epoch) + ": must be >= 1");
  std::vector<int32_t> order(films_.size());
  std::iota(order.begin(), order.end(), 0);
  CounterRng rng(derive_key({domain(RngDomain::kEpochShuffle), options_.seed, uint64_t(epoch)}));
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  return order;
}

PatchPlan PatchSampler::plan_patch(int epoch, int film_index) const {
  if (epoch < 1) throw std::invalid_argument("epoch = " + std::to_string(epoch) + ": must be >= 1");
  if (film_index < 0 || static_cast<size_t>(film_index) >= films_.size())
    throw std::invalid_argument("film index " + std::to_string(film_index) + " out of range");
  const Film& film = films_[film_index];
  const std::vector<int32_t>& mass = mass_pixels_[film_index];
  const int64_t pixels = static_cast<int64_t>(film.rows) * film.cols;
  const int64_t mass_count = static_cast<int64_t>(mass.size());

  // Draws 0..3 in a fixed order, each always taken, so every choice has a fixed counter.
  CounterRng rng(derive_key(
      {domain(RngDomain::kPatch), options_.seed, uint64_t(epoch), uint64_t(film_index)}));
  PatchPlan plan;
  plan.flip_rows = rng.uniform_open_closed() <= options_.flip_probability;
  plan.flip_cols = rng.uniform_open_closed() <= options_.flip_probability;
  const double u = rng.uniform_open_closed();
  // A film that is all mass has no non-mass pixel to centre on: it is always mass-centred.
  plan.mass_centred =
      mass_count > 0 && (u <= options_.mass_centre_probability || mass_count == pixels);
  const int64_t pixel =
      plan.mass_centred
          ? mass[rng.below(static_cast<uint64_t>(mass_count))]
          : nth_non_mass_pixel(
                mass, static_cast<int64_t>(rng.below(static_cast<uint64_t>(pixels - mass_count))));

  // Flipping is a bijection, so a uniform pixel of the film is a uniform pixel of the flipped
  // film: draw in the stored film, then map the coordinates.
  const int row = static_cast<int>(pixel / film.cols), col = static_cast<int>(pixel % film.cols);
  plan.centre_row = plan.flip_rows ? film.rows - 1 - row : row;
  plan.centre_col = plan.flip_cols ? film.cols - 1 - col : col;
  plan.crop_row = window_start(plan.centre_row, options_.patch_rows, film.rows);
  plan.crop_col = window_start(plan.centre_col, options_.patch_cols, film.cols);
  return plan;
}

void PatchSampler::check_batch_arguments(int epoch, int step, int rank, int world_size) const {
  if (epoch < 1) throw std::invalid_argument("epoch = " + std::to_string(epoch) + ": must be >= 1");
  const int steps = steps_per_epoch(world_size);  // checks world_size
  if (rank < 0 || rank >= world_size)
    throw std::invalid_argument("rank = " + std::to_string(rank) + ": must be in [0, " +
                                std::to_string(world_size) + ")");
  if (step < 0 || step >= steps)
    throw std::invalid_argument("step = " + std::to_string(step) + ": must be in [0, " +
                                std::to_string(steps) + ")");
}

// Copies the window of the flipped film without materialising the flip: each patch row is a
// source row read forwards or backwards.
void PatchSampler::copy_patch(const Film& film, const PatchPlan& plan, PatchBatch& batch,
                              int slot) const {
  const int rows = options_.patch_rows, cols = options_.patch_cols;
  const size_t patch_offset = static_cast<size_t>(slot) * rows * cols;
  // Source columns [first, first + cols) hold the flipped window's columns.
  const int first_col = plan.flip_cols ? film.cols - plan.crop_col - cols : plan.crop_col;
  bool any_mass = false;
  for (int r = 0; r < rows; ++r) {
    const int flipped_row = plan.crop_row + r;
    const int source_row = plan.flip_rows ? film.rows - 1 - flipped_row : flipped_row;
    const size_t source = static_cast<size_t>(source_row) * film.cols + first_col;
    const size_t target = patch_offset + static_cast<size_t>(r) * cols;
    const float* image = film.image.data() + source;
    const uint8_t* mask = film.mask.data() + source;
    if (plan.flip_cols) {
      std::reverse_copy(image, image + cols, batch.images.begin() + target);
      std::reverse_copy(mask, mask + cols, batch.masks.begin() + target);
    } else {
      std::copy_n(image, cols, batch.images.begin() + target);
      std::copy_n(mask, cols, batch.masks.begin() + target);
    }
    any_mass = any_mass || std::any_of(mask, mask + cols, [](uint8_t m) { return m != 0; });
  }
  batch.labels[slot] = any_mass ? 1 : 0;
  batch.crop_rows[slot] = plan.crop_row;
  batch.crop_cols[slot] = plan.crop_col;
}

PatchBatch PatchSampler::batch(int epoch, int step, int rank, int world_size) const {
  check_batch_arguments(epoch, step, rank, world_size);
  const std::vector<int32_t> order = epoch_order(epoch);
  const int64_t batch_size = options_.batch_size;
  const int64_t begin = (static_cast<int64_t>(step) * world_size + rank) * batch_size;
  const int64_t end = std::min(begin + batch_size, static_cast<int64_t>(order.size()));

  PatchBatch batch;
  batch.count = static_cast<int>(std::max<int64_t>(0, end - begin));
  batch.rows = options_.patch_rows;
  batch.cols = options_.patch_cols;
  const size_t values = static_cast<size_t>(batch.count) * batch.rows * batch.cols;
  batch.images.resize(values);
  batch.masks.resize(values);
  batch.labels.resize(batch.count);
  batch.sample_indices.resize(batch.count);
  batch.crop_rows.resize(batch.count);
  batch.crop_cols.resize(batch.count);
  for (int slot = 0; slot < batch.count; ++slot) {
    const int film_index = order[begin + slot];
    batch.sample_indices[slot] = film_index;
    copy_patch(films_[film_index], plan_patch(epoch, film_index), batch, slot);
  }
  return batch;
}

SamplerOptions sampler_options_for(const hds::config::Config& config) {
  SamplerOptions options;
  options.patch_rows = config.data().patch_rows();
  options.patch_cols = config.data().patch_cols();
  options.batch_size = config.train().batch_size();
  options.flip_probability = config.data().flip_probability();
  options.mass_centre_probability = config.data().mass_centre_probability();
  options.seed = config.train().seed();
  return options;
}

}  // namespace hds::data

#include "hds/data/patch_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <thread>

namespace hds::data {
namespace {

// A film whose pixel values are their own flat indices (so a patch reveals where it came from),
// with a mass over rows [mass_row, mass_row + mass_rows) x cols [mass_col, mass_col + mass_cols).
Film indexed_film(int rows, int cols, int mass_row = 0, int mass_col = 0, int mass_rows = 0,
                  int mass_cols = 0) {
  Film film;
  film.id = "film";
  film.rows = rows;
  film.cols = cols;
  film.image.resize(rows * cols);
  film.mask.assign(rows * cols, 0);
  for (int i = 0; i < rows * cols; ++i) film.image[i] = static_cast<float>(i);
  for (int r = mass_row; r < mass_row + mass_rows; ++r)
    for (int c = mass_col; c < mass_col + mass_cols; ++c) film.mask[r * cols + c] = 1;
  return film;
}

std::vector<Film> mixed_films(int count) {
  std::vector<Film> films;
  for (int i = 0; i < count; ++i)
    films.push_back(i % 3 == 0 ? indexed_film(40, 30)
                               : indexed_film(40, 30, 5 + i % 7, 3 + i % 11, 4, 3));
  return films;
}

SamplerOptions small_options(int batch_size = 4) {
  SamplerOptions options;
  options.patch_rows = 16;
  options.patch_cols = 12;
  options.batch_size = batch_size;
  options.seed = 99;
  return options;
}

bool same_batch(const PatchBatch& a, const PatchBatch& b) {
  return a.count == b.count && a.images == b.images && a.masks == b.masks && a.labels == b.labels &&
         a.sample_indices == b.sample_indices && a.crop_rows == b.crop_rows &&
         a.crop_cols == b.crop_cols;
}

TEST(PatchSampler, patch_holds_the_flipped_films_pixels_at_the_crop) {
  const std::vector<Film> films = mixed_films(10);
  const PatchSampler sampler(films, small_options());
  std::set<std::pair<bool, bool>> flips_seen;
  for (int epoch = 1; epoch <= 6; ++epoch) {
    for (int step = 0; step < sampler.steps_per_epoch(); ++step) {
      const PatchBatch batch = sampler.batch(epoch, step);
      for (int k = 0; k < batch.count; ++k) {
        const Film& film = films[batch.sample_indices[k]];
        const PatchPlan plan = sampler.plan_patch(epoch, batch.sample_indices[k]);
        flips_seen.insert({plan.flip_rows, plan.flip_cols});
        EXPECT_EQ(batch.crop_rows[k], plan.crop_row);
        EXPECT_EQ(batch.crop_cols[k], plan.crop_col);
        bool any_mass = false;
        for (int r = 0; r < batch.rows; ++r) {
          for (int c = 0; c < batch.cols; ++c) {
            const int flipped_row = batch.crop_rows[k] + r, flipped_col = batch.crop_cols[k] + c;
            const int row = plan.flip_rows ? film.rows - 1 - flipped_row : flipped_row;
            const int col = plan.flip_cols ? film.cols - 1 - flipped_col : flipped_col;
            const size_t at = (static_cast<size_t>(k) * batch.rows + r) * batch.cols + c;
            ASSERT_EQ(batch.images[at], film.image[row * film.cols + col]);
            ASSERT_EQ(batch.masks[at], film.mask[row * film.cols + col]);
            any_mass = any_mass || batch.masks[at];
          }
        }
        EXPECT_EQ(batch.labels[k], any_mass ? 1 : 0);
      }
    }
  }
  EXPECT_EQ(flips_seen.size(), 4u);  // all four flip combinations occur
}

TEST(PatchSampler, window_is_centred_on_the_drawn_pixel_and_shifted_inside) {
  const std::vector<Film> films = mixed_films(10);
  const PatchSampler sampler(films, small_options());
  for (int epoch = 1; epoch <= 20; ++epoch) {
    for (int film = 0; film < 10; ++film) {
      const PatchPlan plan = sampler.plan_patch(epoch, film);
      EXPECT_GE(plan.crop_row, 0);
      EXPECT_LE(plan.crop_row, 40 - 16);
      EXPECT_GE(plan.crop_col, 0);
      EXPECT_LE(plan.crop_col, 30 - 12);
      EXPECT_EQ(plan.crop_row, std::clamp(plan.centre_row - 8, 0, 24));
      EXPECT_EQ(plan.crop_col, std::clamp(plan.centre_col - 6, 0, 18));
    }
  }
}

TEST(PatchSampler, about_half_the_crops_of_a_film_with_a_small_mass_are_mass_centred) {
  // A 4x4 mass in the middle of a 128x96 film: no window needs shifting, so the patch's centre
  // pixel is the drawn centre, and it is a mass pixel exactly when the draw chose the mass.
  const std::vector<Film> films = {indexed_film(128, 96, 62, 46, 4, 4)};
  SamplerOptions options = small_options(1);
  options.patch_rows = 32;
  options.patch_cols = 32;
  const PatchSampler sampler(films, options);
  const int epochs = 2000;
  int centre_on_mass = 0, planned_on_mass = 0, positive = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const PatchBatch batch = sampler.batch(epoch, 0);
    centre_on_mass += batch.masks[16 * 32 + 16];
    planned_on_mass += sampler.plan_patch(epoch, 0).mass_centred;
    positive += batch.labels[0];
  }
  EXPECT_EQ(centre_on_mass, planned_on_mass);
  EXPECT_GE(centre_on_mass, 0.4 * epochs);
  EXPECT_LE(centre_on_mass, 0.65 * epochs);
  EXPECT_GT(positive, centre_on_mass);  // some crops centred off the mass still hold it
}

TEST(PatchSampler, non_mass_draws_reach_every_non_mass_pixel_and_no_mass_pixel) {
  // An 8x8 film that is all mass but five pixels; 1x1 patches are their own centres.
  Film film = indexed_film(8, 8, 0, 0, 8, 8);
  const std::set<int> free_pixels = {0, 9, 31, 32, 63};
  for (int i : free_pixels) film.mask[i] = 0;
  const std::vector<Film> films = {film};
  SamplerOptions options = small_options(1);
  options.patch_rows = options.patch_cols = 1;
  options.flip_probability = 0;
  options.mass_centre_probability = 0;
  const PatchSampler sampler(films, options);
  std::set<int> seen;
  for (int epoch = 1; epoch <= 300; ++epoch) {
    const PatchBatch batch = sampler.batch(epoch, 0);
    seen.insert(static_cast<int>(batch.images[0]));
    EXPECT_EQ(batch.labels[0], 0);
  }
  EXPECT_EQ(seen, free_pixels);
}

TEST(PatchSampler, mass_probability_one_always_centres_on_the_mass) {
  const std::vector<Film> films = {indexed_film(40, 30, 10, 10, 2, 3)};
  SamplerOptions options = small_options(1);
  options.mass_centre_probability = 1;
  const PatchSampler sampler(films, options);
  for (int epoch = 1; epoch <= 200; ++epoch) {
    const PatchPlan plan = sampler.plan_patch(epoch, 0);
    ASSERT_TRUE(plan.mass_centred);
    const int row = plan.flip_rows ? 39 - plan.centre_row : plan.centre_row;
    const int col = plan.flip_cols ? 29 - plan.centre_col : plan.centre_col;
    ASSERT_EQ(films[0].mask[row * 30 + col], 1);
  }
}

TEST(PatchSampler, film_without_mass_is_never_mass_centred) {
  const std::vector<Film> films = {indexed_film(40, 30)};
  SamplerOptions options = small_options(1);
  options.mass_centre_probability = 1;
  const PatchSampler sampler(films, options);
  for (int epoch = 1; epoch <= 50; ++epoch) {
    EXPECT_FALSE(sampler.plan_patch(epoch, 0).mass_centred);
    EXPECT_EQ(sampler.batch(epoch, 0).labels[0], 0);
  }
}

TEST(PatchSampler, batches_are_deterministic_across_calls_and_threads) {
  const std::vector<Film> films = mixed_films(13);
  const PatchSampler sampler(films, small_options());
  const PatchBatch reference = sampler.batch(3, 1);
  EXPECT_TRUE(same_batch(reference, sampler.batch(3, 1)));
  const PatchSampler twin(films, small_options());
  EXPECT_TRUE(same_batch(reference, twin.batch(3, 1)));

  std::vector<PatchBatch> from_threads(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { from_threads[t] = sampler.batch(3, 1); });
  for (std::thread& thread : threads) thread.join();
  for (const PatchBatch& batch : from_threads) EXPECT_TRUE(same_batch(reference, batch));
}

// Every film exactly once per epoch over all steps and ranks; the last, smaller batch is kept.
class EpochCoverage : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(EpochCoverage, every_film_once_per_epoch) {
  const auto [film_count, batch_size, world_size] = GetParam();
  const std::vector<Film> films = mixed_films(film_count);
  const PatchSampler sampler(films, small_options(batch_size));
  const int steps = sampler.steps_per_epoch(world_size);
  EXPECT_EQ(steps, (film_count + batch_size * world_size - 1) / (batch_size * world_size));
  for (int epoch = 1; epoch <= 3; ++epoch) {
    std::vector<int> seen;
    for (int step = 0; step < steps; ++step) {
      for (int rank = 0; rank < world_size; ++rank) {
        const PatchBatch batch = sampler.batch(epoch, step, rank, world_size);
        const int begin = (step * world_size + rank) * batch_size;
        EXPECT_EQ(batch.count, std::clamp(film_count - begin, 0, batch_size));
        EXPECT_EQ(batch.images.size(), static_cast<size_t>(batch.count) * 16 * 12);
        seen.insert(seen.end(), batch.sample_indices.begin(), batch.sample_indices.end());
      }
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int> all(film_count);
    for (int i = 0; i < film_count; ++i) all[i] = i;
    EXPECT_EQ(seen, all) << "epoch " << epoch;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, EpochCoverage,
                         ::testing::Values(std::make_tuple(11, 2, 2),   // last step: 2 + 1
                                           std::make_tuple(9, 2, 2),    // last step: 1 + 0
                                           std::make_tuple(8, 4, 1),    // no remainder
                                           std::make_tuple(7, 3, 1),    // last batch of 1
                                           std::make_tuple(5, 8, 3)));  // ranks 1, 2 get nothing

TEST(PatchSampler, a_films_patch_does_not_depend_on_the_world_size) {
  const std::vector<Film> films = mixed_films(12);
  const PatchSampler sampler(films, small_options(2));
  std::vector<std::vector<float>> single(12), sharded(12);
  auto collect = [&](int world_size, std::vector<std::vector<float>>& out) {
    for (int step = 0; step < sampler.steps_per_epoch(world_size); ++step)
      for (int rank = 0; rank < world_size; ++rank) {
        const PatchBatch batch = sampler.batch(5, step, rank, world_size);
        const size_t size = static_cast<size_t>(batch.rows) * batch.cols;
        for (int k = 0; k < batch.count; ++k)
          out[batch.sample_indices[k]].assign(batch.images.begin() + k * size,
                                              batch.images.begin() + (k + 1) * size);
      }
  };
  collect(1, single);
  collect(3, sharded);
  EXPECT_EQ(single, sharded);
}

TEST(PatchSampler, epochs_have_different_orders) {
  const std::vector<Film> films = mixed_films(20);
  const PatchSampler sampler(films, small_options());
  std::set<std::vector<int32_t>> orders;
  for (int epoch = 1; epoch <= 5; ++epoch) {
    std::vector<int32_t> order = sampler.epoch_order(epoch);
    std::vector<int32_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(sorted[i], i);
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 5u);
  const std::vector<int32_t> first = sampler.epoch_order(1);
  EXPECT_EQ(sampler.batch(1, 0).sample_indices,
            std::vector<int32_t>(first.begin(), first.begin() + 4));
}

TEST(PatchSampler, seed_changes_the_patches) {
  const std::vector<Film> films = mixed_films(8);
  SamplerOptions other = small_options();
  other.seed = 100;
  EXPECT_FALSE(same_batch(PatchSampler(films, small_options()).batch(1, 0),
                          PatchSampler(films, other).batch(1, 0)));
}

TEST(PatchSampler, rejects_bad_arguments) {
  const std::vector<Film> films = mixed_films(5);
  const PatchSampler sampler(films, small_options(2));
  EXPECT_THROW(sampler.batch(0, 0), std::invalid_argument);
  EXPECT_THROW(sampler.batch(1, 3), std::invalid_argument);  // 3 steps: 0..2
  EXPECT_THROW(sampler.batch(1, -1), std::invalid_argument);
  EXPECT_THROW(sampler.batch(1, 0, 2, 2), std::invalid_argument);
  EXPECT_THROW(sampler.batch(1, 0, -1, 2), std::invalid_argument);
  EXPECT_THROW(sampler.batch(1, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(sampler.steps_per_epoch(0), std::invalid_argument);
}

TEST(PatchSampler, rejects_films_smaller_than_a_patch_and_no_films) {
  const std::vector<Film> none;
  EXPECT_THROW(PatchSampler(none, small_options()), DataError);
  const std::vector<Film> small = {indexed_film(15, 30)};
  try {
    PatchSampler sampler(small, small_options());
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("15x30"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace hds::data

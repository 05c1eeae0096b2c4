#include "hds/data/dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "hds/data/png_io.h"
#include "hds/test/files.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

using testing::expect_data_error;
using testing::TempDir;
using testing::write_text;

// A tiny folder dataset of 2x2 films whose every level is above the blank threshold, so
// preprocessing at 2x2 changes nothing but the scale (levels / 255).
class TinyFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() / "img");
    std::filesystem::create_directories(dir_.path() / "label");
    add_film("a", {51, 102, 153, 204}, {0, 1, 0, 0});   // 0.2 0.4 0.6 0.8
    add_film("b", {255, 255, 51, 51}, {0, 0, 0, 255});  // 1.0 1.0 0.2 0.2; 255 = mass
    add_film("c", {102, 102, 102, 102}, {0, 0, 0, 0});
    add_film("d", {204, 51, 51, 204}, {1, 1, 1, 1});
    write_text(dir_.path() / "split" / "train.txt", "a\n\n  b \r\n");
    write_text(dir_.path() / "split" / "val.txt", "c\n");
    write_text(dir_.path() / "split" / "test.txt", "d\n");
  }

  void add_film(const std::string& id, std::vector<uint8_t> image, std::vector<uint8_t> mask) {
    write_grey_png(dir_.file("img/" + id + ".png"), 2, 2, image);
    write_grey_png(dir_.file("label/" + id + ".png"), 2, 2, mask);
  }

  hds::config::DataConfig config() const {
    hds::config::DataConfig config;
    config.set_source("folder");
    config.set_root(dir_.path().string());
    config.set_image_rows(2);
    config.set_image_cols(2);
    return config;
  }

  TempDir dir_;
};

TEST_F(TinyFolder, mean_and_std_come_from_the_training_split) {
  const Dataset dataset = load_dataset(config());
  // Training pixels 0.2 0.4 0.6 0.8 1 1 0.2 0.2: mean 4.4 / 8 = 0.55, mean of squares
  // 3.28 / 8 = 0.41, variance 0.41 - 0.55^2 = 0.1075.
  EXPECT_NEAR(dataset.mean, 0.55, 1e-7);
  EXPECT_NEAR(dataset.std, std::sqrt(0.1075), 1e-7);
  ASSERT_EQ(dataset.train.size(), 2u);
  EXPECT_EQ(dataset.train[0].id, "a");
  EXPECT_EQ(dataset.train[1].id, "b");  // blanks around the id and \r are ignored
  EXPECT_EQ(dataset.train[1].patient, "b");
  const double std = std::sqrt(0.1075);
  EXPECT_NEAR(dataset.train[0].image[0], (0.2 - 0.55) / std, 1e-5);
  EXPECT_NEAR(dataset.train[1].image[0], (1.0 - 0.55) / std, 1e-5);
}

TEST_F(TinyFolder, validation_and_test_use_the_training_statistics) {
  const Dataset dataset = load_dataset(config());
  const double std = std::sqrt(0.1075);
  ASSERT_EQ(dataset.val.size(), 1u);
  ASSERT_EQ(dataset.test.size(), 1u);
  for (float x : dataset.val[0].image) EXPECT_NEAR(x, (0.4 - 0.55) / std, 1e-5);
  EXPECT_NEAR(dataset.test[0].image[0], (0.8 - 0.55) / std, 1e-5);
  EXPECT_NEAR(dataset.test[0].image[1], (0.2 - 0.55) / std, 1e-5);
}

TEST_F(TinyFolder, masks_of_zero_one_or_zero_255_both_mean_mass) {
  const Dataset dataset = load_dataset(config());
  EXPECT_EQ(dataset.train[0].mask, (std::vector<uint8_t>{0, 1, 0, 0}));
  EXPECT_EQ(dataset.train[1].mask, (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_TRUE(dataset.train[0].has_mass());
  EXPECT_FALSE(dataset.val[0].has_mass());
}

TEST_F(TinyFolder, configured_mean_and_std_override_the_computed_ones) {
  hds::config::DataConfig overridden = config();
  overridden.set_mean(0.5);
  overridden.set_std(0.25);
  const Dataset dataset = load_dataset(overridden);
  EXPECT_EQ(dataset.mean, 0.5);
  EXPECT_EQ(dataset.std, 0.25);
  EXPECT_NEAR(dataset.train[0].image[0], (0.2 - 0.5) / 0.25, 1e-5);
}

TEST_F(TinyFolder, mean_without_a_positive_std_is_an_error) {
  hds::config::DataConfig bad = config();
  bad.set_mean(0.5);
  expect_data_error([&] { load_dataset(bad); }, {"data.std"});
}

TEST_F(TinyFolder, missing_val_and_test_lists_give_empty_splits) {
  std::filesystem::remove(dir_.path() / "split" / "val.txt");
  std::filesystem::remove(dir_.path() / "split" / "test.txt");
  const Dataset dataset = load_dataset(config());
  EXPECT_EQ(dataset.train.size(), 2u);
  EXPECT_TRUE(dataset.val.empty());
  EXPECT_TRUE(dataset.test.empty());
}

TEST_F(TinyFolder, mask_of_another_size_names_both_files_and_sizes) {
  write_grey_png(dir_.file("label/b.png"), 3, 2, {0, 0, 0, 0, 0, 0});
  const std::string image = dir_.file("img/b.png"), mask = dir_.file("label/b.png");
  expect_data_error([&] { load_dataset(config()); }, {image, mask, "3x2", "2x2"});
}

TEST_F(TinyFolder, missing_train_list_is_named) {
  std::filesystem::remove(dir_.path() / "split" / "train.txt");
  expect_data_error([&] { load_dataset(config()); }, {dir_.file("split/train.txt")});
}

TEST_F(TinyFolder, empty_train_split_is_named) {
  write_text(dir_.path() / "split" / "train.txt", "\n  \n");
  expect_data_error([&] { load_dataset(config()); }, {dir_.file("split/train.txt"), "empty"});
}

TEST_F(TinyFolder, missing_image_is_named) {
  std::filesystem::remove(dir_.path() / "img" / "c.png");
  expect_data_error([&] { load_dataset(config()); }, {dir_.file("img/c.png")});
}

TEST_F(TinyFolder, id_in_two_splits_is_an_error) {
  write_text(dir_.path() / "split" / "test.txt", "a\n");
  expect_data_error([&] { load_dataset(config()); }, {"'a'", "train.txt", "test.txt"});
}

TEST_F(TinyFolder, mass_count_is_the_number_of_mask_regions) {
  add_film("e", {51, 51, 51, 51}, {1, 0, 0, 1});  // diagonal pixels touch: one region
  write_text(dir_.path() / "split" / "train.txt", "a\nb\ne\n");
  const Dataset dataset = load_dataset(config());
  EXPECT_EQ(dataset.train[0].mass_count, 1);
  EXPECT_EQ(dataset.train[2].mass_count, 1);
  EXPECT_EQ(dataset.val[0].mass_count, 0);
}

TEST_F(TinyFolder, stop_policy_names_the_corrupt_film) {
  write_text(dir_.path() / "img" / "b.png", "not a png");
  expect_data_error([&] { load_dataset(config()); }, {dir_.file("img/b.png"), "not a PNG"});
}

TEST_F(TinyFolder, skip_policy_loads_the_other_films_and_reports_the_corrupt_one) {
  write_text(dir_.path() / "img" / "b.png", "not a png");
  hds::config::DataConfig skip = config();
  skip.set_on_bad_sample(hds::config::DataConfig::SKIP);
  ::testing::internal::CaptureStderr();
  const Dataset dataset = load_dataset(skip);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(dataset.train.size(), 1u);
  EXPECT_EQ(dataset.train[0].id, "a");
  EXPECT_EQ(dataset.val.size(), 1u);
  EXPECT_EQ(dataset.test.size(), 1u);
  EXPECT_EQ(dataset.report.skipped_films, 1);
  ASSERT_EQ(dataset.report.warnings.size(), 1u);
  EXPECT_EQ(dataset.report.warnings[0],
            "skipped film b (data.on_bad_sample SKIP): " + dir_.file("img/b.png") +
                ": not a PNG file (no PNG signature)");
  EXPECT_EQ(printed, "warning: " + dataset.report.warnings[0] + "\n");
  // Statistics come from the films kept: a alone (0.2 0.4 0.6 0.8).
  EXPECT_NEAR(dataset.mean, 0.5, 1e-7);
}

TEST_F(TinyFolder, skip_policy_still_needs_a_training_film) {
  write_text(dir_.path() / "split" / "train.txt", "b\n");
  write_text(dir_.path() / "img" / "b.png", "not a png");
  hds::config::DataConfig skip = config();
  skip.set_on_bad_sample(hds::config::DataConfig::SKIP);
  ::testing::internal::CaptureStderr();
  expect_data_error([&] { load_dataset(skip); },
                    {"training split is empty", "every training film was skipped"});
  ::testing::internal::GetCapturedStderr();
}

TEST_F(TinyFolder, a_validation_only_load_decodes_no_other_film_and_uses_the_given_statistics) {
  // A training film that cannot be read: a full load stops at it, a load without training films
  // never opens it.
  std::filesystem::remove(dir_.file("img/a.png"));
  expect_data_error([&] { load_dataset(config()); }, {"a.png"});
  SplitSelection validation;
  validation.train = false;
  validation.test = false;
  validation.normalisation = PixelStatistics{0.5, 0.25};
  const Dataset dataset = load_dataset(config(), validation);
  EXPECT_TRUE(dataset.train.empty());
  EXPECT_TRUE(dataset.test.empty());
  ASSERT_EQ(dataset.val.size(), 1u);
  EXPECT_EQ(dataset.val[0].id, "c");
  EXPECT_EQ(dataset.mean, 0.5);
  EXPECT_EQ(dataset.std, 0.25);
  EXPECT_NEAR(dataset.val[0].image[0], (0.4 - 0.5) / 0.25, 1e-6);  // 102 / 255 = 0.4
}

TEST_F(TinyFolder, a_load_without_the_training_split_needs_its_normalisation) {
  SplitSelection validation;
  validation.train = false;
  EXPECT_THROW(load_dataset(config(), validation), std::invalid_argument);
}

TEST(Dataset, unknown_source_and_missing_root_are_errors) {
  hds::config::DataConfig config;
  config.set_source("dicom-cloud");
  expect_data_error([&] { load_dataset(config); }, {"dicom-cloud"});
  config.set_source("folder");
  expect_data_error([&] { load_dataset(config); }, {"data.root"});
}

TEST(Dataset, phantom_source_splits_and_normalises) {
  hds::config::DataConfig config;
  config.set_image_rows(128);
  config.set_image_cols(64);
  config.mutable_phantom()->set_train_count(5);
  config.mutable_phantom()->set_val_count(2);
  config.mutable_phantom()->set_test_count(1);
  const Dataset dataset = load_dataset(config);
  ASSERT_EQ(dataset.train.size(), 5u);
  ASSERT_EQ(dataset.val.size(), 2u);
  ASSERT_EQ(dataset.test.size(), 1u);
  EXPECT_EQ(dataset.train[4].id, "phantom-0004");
  EXPECT_EQ(dataset.val[0].id, "phantom-0005");
  EXPECT_EQ(dataset.test[0].id, "phantom-0007");
  EXPECT_EQ(dataset.test[0].patient, "phantom-0007");
  double sum = 0, squares = 0, count = 0;
  for (const Film& film : dataset.train) {
    EXPECT_EQ(film.rows, 128);
    EXPECT_EQ(film.cols, 64);
    for (float x : film.image) {
      sum += x;
      squares += double(x) * x;
      ++count;
    }
  }
  EXPECT_NEAR(sum / count, 0.0, 1e-5);  // normalised with its own statistics
  EXPECT_NEAR(squares / count, 1.0, 1e-4);
  EXPECT_GT(dataset.mean, 0.0);
  EXPECT_LT(dataset.mean, 1.0);
}

TEST(Dataset, phantom_source_rejects_an_empty_training_split) {
  hds::config::DataConfig config;
  config.set_image_rows(64);
  config.set_image_cols(64);
  config.mutable_phantom()->set_train_count(0);
  expect_data_error([&] { load_dataset(config); }, {"train_count"});
}

TEST(Dataset, phantom_source_needs_films_of_at_least_64x64) {
  hds::config::DataConfig config;
  config.set_image_rows(32);
  config.set_image_cols(64);
  expect_data_error([&] { load_dataset(config); }, {"data.image_rows", "32x64"});
}

// Pooled phantoms are divided by folds like a file source's: every film in one split, each
// rotation testing on another fold, films with masses spread over the folds.
TEST(Dataset, pooled_phantoms_divide_into_folds) {
  hds::config::DataConfig config;
  config.set_image_rows(64);
  config.set_image_cols(64);
  config.set_use_cache(false);
  config.set_split_file(hds::test::scratch_dir("phantom-folds") + "/split.txt");
  config.mutable_phantom()->set_train_count(8);
  config.mutable_phantom()->set_val_count(2);
  config.mutable_phantom()->set_test_count(2);
  config.mutable_phantom()->set_mass_free_share(0.5);
  config.mutable_phantom()->set_divide_into_folds(true);
  config.set_folds(3);
  std::set<std::string> tested;
  for (int rotation = 0; rotation < 3; ++rotation) {
    config.set_fold(rotation);
    const Dataset dataset = load_dataset(config);
    EXPECT_EQ(dataset.train.size() + dataset.val.size() + dataset.test.size(), 12u);
    EXPECT_EQ(dataset.test.size(), 4u) << rotation;
    int with_mass = 0;
    for (const Film& film : dataset.test) {
      EXPECT_TRUE(tested.insert(film.id).second) << film.id << " tested twice";
      with_mass += film.has_mass();
    }
    // Stratified: about half of the films hold masses (6 of 12, within one), dealt evenly.
    EXPECT_GE(with_mass, 1) << rotation;
    EXPECT_LE(with_mass, 3) << rotation;
  }
  EXPECT_EQ(tested.size(), 12u);
}

// A mini-MIAS root of 12 normal 8x8 films (6 patients), divided into 3 patient folds; a full
// load deals them and writes the split file. A load of the validation fold alone then decodes no
// training film: one removed is never missed. Without the split file the films must be dealt
// again, which decodes every film, and the missing one is named.
TEST(Dataset, a_validation_only_load_of_folds_decodes_the_validation_fold_by_the_split_file) {
  TempDir dir;
  std::string info;
  std::vector<uint16_t> levels(64);
  for (size_t i = 0; i < levels.size(); ++i) levels[i] = static_cast<uint16_t>(100 + i);
  for (int film = 1; film <= 12; ++film) {
    const std::string id = "mdb" + std::string(film < 10 ? "00" : "0") + std::to_string(film);
    info += id + " G NORM\n";
    write_text(dir.path() / (id + ".pgm"), testing::pgm_bytes(8, 8, 255, levels));
  }
  write_text(dir.path() / "Info.txt", info);
  hds::config::DataConfig config;
  config.set_source("mini-mias");
  config.set_root(dir.path().string());
  config.set_use_cache(false);
  config.set_image_rows(8);
  config.set_image_cols(8);
  config.set_split_file(dir.file("split.txt"));
  config.set_folds(3);
  config.set_fold(1);
  const Dataset full = load_dataset(config);
  ASSERT_FALSE(full.train.empty());
  ASSERT_FALSE(full.val.empty());

  std::filesystem::remove(dir.path() / (full.train[0].id + ".pgm"));
  SplitSelection validation;
  validation.train = false;
  validation.test = false;
  validation.normalisation = PixelStatistics{full.mean, full.std};
  const Dataset served = load_dataset(config, validation);
  EXPECT_TRUE(served.train.empty());
  EXPECT_TRUE(served.test.empty());
  ASSERT_EQ(served.val.size(), full.val.size());
  for (size_t i = 0; i < full.val.size(); ++i) {
    EXPECT_EQ(served.val[i].id, full.val[i].id);
    EXPECT_EQ(served.val[i].image, full.val[i].image) << full.val[i].id;
  }
  EXPECT_EQ(served.split_file, full.split_file);
  EXPECT_EQ(served.film_fold, full.film_fold);

  std::filesystem::remove(dir.file("split.txt"));
  expect_data_error([&] { load_dataset(config, validation); }, {full.train[0].id + ".pgm"});
}

}  // namespace
TEST_F(TinyFolder, a_film_above_the_pixel_budget_is_a_bad_sample_named_with_the_budget) {
  hds::config::DataConfig small = config();
  small.set_max_film_pixels(3);  // the films are 2 x 2
  small.set_use_cache(false);    // a cached film is not decoded again
  expect_data_error(
      [&] { load_dataset(small); },
      {dir_.file("img/a.png"), "PNG declares 2 x 2 = 4 pixels", "data.max_film_pixels (3)"});
}

TEST(FilmsDecodedAtOnce, as_many_as_the_cores_while_half_the_memory_holds_their_worst_case) {
  const uint64_t film = uint64_t{1} << 25;  // the default budget: 384 MiB at 12 bytes a pixel
  const uint64_t gib = uint64_t{1} << 30;
  EXPECT_EQ(films_decoded_at_once(64 * gib, film, 16), 16u);  // 32 GiB hold 85 such films
  EXPECT_EQ(films_decoded_at_once(2 * gib, film, 16), 2u);    // 1 GiB holds 2 (768 MiB)
  EXPECT_EQ(films_decoded_at_once(gib / 2, film, 16), 1u);    // never fewer than one
  EXPECT_EQ(films_decoded_at_once(0, film, 4), 1u);           // unknown memory: one at a time
}

TEST(DatasetMemory, an_absurd_phantom_count_is_refused_by_name_before_anything_is_made) {
  hds::config::DataConfig config;
  config.set_source("phantom");
  config.set_image_rows(256);
  config.set_image_cols(128);
  config.mutable_phantom()->set_train_count(2000000000);
  config.mutable_phantom()->set_val_count(1);
  config.mutable_phantom()->set_test_count(0);
  expect_data_error([&] { load_dataset(config); },
                    {"data.phantom.train_count + val_count + test_count: 2000000001 films of "
                     "data.image_rows x data.image_cols = 256 x 128 need",
                     "available: use fewer or smaller films"});
  // The arithmetic, against a given memory: 10 films of 256 x 128 take 1.56 MiB (5 bytes a pixel).
  EXPECT_NO_THROW(check_dataset_fits_in_memory(10, config, 2 << 20, "n"));
  expect_data_error([&] { check_dataset_fits_in_memory(10, config, 1 << 20, "n"); },
                    {"n: 10 films", "need 0.00153 GiB in memory; this machine has 0.000977 GiB"});
}

}  // namespace hds::data

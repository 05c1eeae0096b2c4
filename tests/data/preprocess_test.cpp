#include "hds/data/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>

#include "hds/data/film_file.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

// 4 rows x 10 columns: columns 0-2 and 8-9 are blank (levels <= 10 of 255 = 0.039 <= 0.04),
// column 5 is dark but kept (it lies between non-blank columns), the rest hold known levels.
GreyImage image_with_blank_margins() {
  GreyImage image;
  image.rows = 4;
  image.cols = 10;
  image.max_level = 255;
  const uint16_t levels[4][10] = {
      {0, 10, 3, 51, 102, 0, 153, 204, 10, 0},
      {0, 0, 10, 102, 153, 2, 204, 255, 0, 9},
      {5, 0, 0, 51, 51, 0, 51, 51, 1, 0},
      {0, 7, 0, 255, 204, 0, 153, 102, 0, 10},
  };
  for (const auto& row : levels) image.pixels.insert(image.pixels.end(), row, row + 10);
  return image;
}

std::vector<uint8_t> mask_with_mass_at(int rows, int cols, int row, int col, uint8_t value = 1) {
  std::vector<uint8_t> mask(rows * cols, 0);
  mask[row * cols + col] = value;
  return mask;
}

TEST(Preprocess, finds_the_span_between_blank_margins) {
  const ColumnSpan span = non_blank_columns(image_with_blank_margins(), 0.04f);
  EXPECT_EQ(span.begin, 3);
  EXPECT_EQ(span.end, 8);
}

// 6 x 12: a bright "breast" (rows 1-4, columns 5-10, with a darker pixel inside), a small bright
// "label" at rows 0-1, columns 0-1, and dim background noise (below the 0.1 threshold) elsewhere.
GreyImage film_with_a_label() {
  GreyImage image;
  image.rows = 6;
  image.cols = 12;
  image.pixels.assign(72, 12);  // 12/255 = 0.047: not blank, not bright
  for (int r = 1; r <= 4; ++r)
    for (int c = 5; c <= 10; ++c)
      image.pixels[r * 12 + c] = static_cast<uint16_t>(100 + r * 10 + c);
  image.pixels[2 * 12 + 7] = 20;  // a dark spot inside the breast
  for (int r = 0; r <= 1; ++r)
    for (int c = 0; c <= 1; ++c) image.pixels[r * 12 + c] = 250;
  return image;
}

TEST(BreastRegion, keeps_the_largest_bright_region_and_blackens_the_others) {
  const GreyImage film = film_with_a_label();
  const GreyImage kept = keep_largest_bright_region(film, 0.1f);
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 12; ++c) {
      const size_t i = static_cast<size_t>(r) * 12 + c;
      const bool label = r <= 1 && c <= 1;
      EXPECT_EQ(kept.pixels[i], label ? 0 : film.pixels[i]) << r << "," << c;
    }
  }
}

TEST(BreastRegion, lets_the_blank_cut_drop_the_labels_columns) {
  GreyImage film = film_with_a_label();
  for (uint16_t& level : film.pixels)
    if (level == 12) level = 0;  // black background: only the label keeps columns 0-1
  PreprocessOptions options;
  options.blank_threshold = 0.04f;
  EXPECT_EQ(kept_columns(film, options).begin, 0);
  options.keep_largest_bright_region = true;
  EXPECT_EQ(kept_columns(film, options).begin, 5);
  EXPECT_EQ(kept_columns(film, options).end, 11);
}

TEST(BreastRegion, an_image_without_bright_pixels_is_unchanged) {
  GreyImage dim;
  dim.rows = 2;
  dim.cols = 2;
  dim.pixels = {1, 2, 3, 4};
  EXPECT_EQ(keep_largest_bright_region(dim, 0.1f).pixels, dim.pixels);
}

TEST(BreastRegion, is_configured_by_data_breast_region) {
  hds::config::DataConfig config;
  EXPECT_FALSE(preprocess_options_for(config).keep_largest_bright_region);
  config.set_breast_region(hds::config::DataConfig::LARGEST_COMPONENT);
  config.set_breast_threshold(0.25f);
  const PreprocessOptions options = preprocess_options_for(config);
  EXPECT_TRUE(options.keep_largest_bright_region);
  EXPECT_FLOAT_EQ(options.breast_threshold, 0.25f);
}

TEST(Preprocess, all_blank_image_keeps_every_column) {
  GreyImage image;
  image.rows = 2;
  image.cols = 3;
  image.pixels = {0, 1, 2, 3, 4, 5};
  const ColumnSpan span = non_blank_columns(image, 0.04f);
  EXPECT_EQ(span.begin, 0);
  EXPECT_EQ(span.end, 3);
}

TEST(Preprocess, cuts_blank_columns_and_keeps_the_rest_unchanged_at_the_same_size) {
  const GreyImage image = image_with_blank_margins();
  PreprocessOptions options;
  options.rows = 4;
  options.cols = 5;  // exactly the kept span: no resampling
  const Film film = preprocess_film(image, mask_with_mass_at(4, 10, 1, 4, 255), options, "a", "p");
  EXPECT_EQ(film.id, "a");
  EXPECT_EQ(film.patient, "p");
  ASSERT_EQ(film.rows, 4);
  ASSERT_EQ(film.cols, 5);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 5; ++c)
      EXPECT_FLOAT_EQ(film.image[r * 5 + c], image.pixels[r * 10 + c + 3] / 255.0f)
          << r << "," << c;
  // The mass at column 4 lands at column 1 of the cut film; 255 in the mask means mass.
  EXPECT_EQ(film.mask, mask_with_mass_at(4, 5, 1, 1));
}

TEST(Preprocess, shrinking_rows_by_two_averages_row_pairs) {
  const GreyImage image = image_with_blank_margins();
  PreprocessOptions options;
  options.rows = 2;
  options.cols = 5;
  const Film film = preprocess_film(image, std::vector<uint8_t>(40, 0), options, "a", "a");
  ASSERT_EQ(film.image.size(), 10u);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 5; ++c) {
      const double expected =
          (image.pixels[(2 * r) * 10 + c + 3] + image.pixels[(2 * r + 1) * 10 + c + 3]) / 510.0;
      EXPECT_NEAR(film.image[r * 5 + c], expected, 1e-6) << r << "," << c;
    }
}

TEST(Preprocess, enlarging_keeps_the_mask_aligned_and_binary) {
  const GreyImage image = image_with_blank_margins();
  PreprocessOptions options;
  options.rows = 8;
  options.cols = 10;  // every kept pixel becomes a 2x2 block
  const Film film = preprocess_film(image, mask_with_mass_at(4, 10, 2, 5), options, "a", "a");
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 10; ++c) {
      const bool inside = (r / 2 == 2) && (c / 2 == 2);  // source row 2, cut column 5 - 3 = 2
      EXPECT_EQ(film.mask[r * 10 + c], inside ? 1 : 0) << r << "," << c;
    }
  for (float x : film.image) {
    EXPECT_GE(x, 0.0f);
    EXPECT_LE(x, 1.0f);
  }
}

TEST(Preprocess, sixteen_bit_levels_scale_by_65535) {
  GreyImage image;
  image.rows = 1;
  image.cols = 3;
  image.max_level = 65535;
  image.pixels = {65535, 32768, 13107};
  PreprocessOptions options;
  options.rows = 1;
  options.cols = 3;
  const Film film = preprocess_film(image, {0, 0, 0}, options, "a", "a");
  EXPECT_FLOAT_EQ(film.image[0], 1.0f);
  EXPECT_FLOAT_EQ(film.image[1], 32768 / 65535.0f);
  EXPECT_FLOAT_EQ(film.image[2], 0.2f);
}

TEST(Preprocess, mask_of_the_wrong_size_is_a_data_error) {
  PreprocessOptions options;
  testing::expect_data_error(
      [&] {
        preprocess_film(image_with_blank_margins(), {0, 1}, options, "film7", "film7");
      },
      {"film7", "mask"});
}

TEST(Preprocess, statistics_and_normalisation) {
  std::vector<Film> films(2);
  films[0].image = {0.0f, 1.0f};
  films[1].image = {0.5f, 0.5f};
  const PixelStatistics statistics = pixel_statistics(films);
  EXPECT_DOUBLE_EQ(statistics.mean, 0.5);
  EXPECT_DOUBLE_EQ(statistics.std, std::sqrt(0.125));
  normalise_films(films, 0.5, 0.25);
  EXPECT_EQ(films[0].image, (std::vector<float>{-2.0f, 2.0f}));
  EXPECT_EQ(films[1].image, (std::vector<float>{0.0f, 0.0f}));
}

TEST(Preprocess, restoring_the_geometry_fills_the_kept_columns_and_zeroes_the_blank_ones) {
  // A 4 x 4 map of the preprocessed film back onto 6 x 8 whose columns [2, 5) were kept.
  const std::vector<float> map(16, 0.75f);
  const auto restored = restore_film_geometry(map, 4, 4, ColumnSpan{2, 5}, 6, 8);
  ASSERT_EQ(restored.size(), 48u);
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 8; ++c) {
      EXPECT_FLOAT_EQ(restored[r * 8 + c], c >= 2 && c < 5 ? 0.75f : 0.f) << r << "," << c;
    }
  }
  // The cut and resize undone: a map of the preprocessed film's left half lands left of centre.
  std::vector<float> half(16, 0.f);
  for (int r = 0; r < 4; ++r) half[r * 4] = half[r * 4 + 1] = 1.f;
  const auto placed = restore_film_geometry(half, 4, 4, ColumnSpan{0, 8}, 4, 8);
  EXPECT_FLOAT_EQ(placed[0], 1.f);
  EXPECT_FLOAT_EQ(placed[7], 0.f);
  EXPECT_THROW(restore_film_geometry(map, 3, 4, ColumnSpan{0, 8}, 6, 8), DataError);
  EXPECT_THROW(restore_film_geometry(map, 4, 4, ColumnSpan{5, 9}, 6, 8), DataError);
}

TEST(FilmFile, reads_by_extension_and_names_an_unknown_one) {
  testing::TempDir dir;
  testing::write_text(dir.path() / "film.PGM", testing::pgm_bytes(2, 3, 255, {1, 2, 3, 4, 5, 6}));
  const FilmFile film = read_film_file(dir.file("film.PGM"));
  EXPECT_EQ(film.kind, "pgm");
  EXPECT_EQ(film.image.rows, 2);
  EXPECT_EQ(film.image.cols, 3);
  EXPECT_EQ(film.image.pixels[5], 6);
  testing::expect_data_error([&] { read_film_file(dir.file("film.jpg")); },
                             {dir.file("film.jpg"), "unknown film type \".jpg\""});
}

}  // namespace
}  // namespace hds::data

#include "hds/data/phantom.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "hds/data/png_io.h"
#include "hds/data/preprocess.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

using testing::read_lines;

constexpr uint64_t kSeed = 20180101;
constexpr double kInbreastShare = 303.0 / 410.0;  // INbreast's films without a mass
constexpr double kNoneFree = 0;                   // every film holds masses

GreyImage as_grey(const PhantomFilm& film) {
  GreyImage image;
  image.rows = film.rows;
  image.cols = film.cols;
  image.pixels.assign(film.image.begin(), film.image.end());
  return image;
}

TEST(Phantom, same_seed_and_index_give_identical_films) {
  for (int index : {0, 5, 11}) {
    const PhantomFilm a = make_phantom(kSeed, index, 256, 128, kInbreastShare);
    const PhantomFilm b = make_phantom(kSeed, index, 256, 128, kInbreastShare);
    EXPECT_EQ(a.image, b.image);
    EXPECT_EQ(a.mask, b.mask);
    EXPECT_EQ(a.mass_count, b.mass_count);
  }
}

TEST(Phantom, different_seed_or_index_gives_different_films) {
  const PhantomFilm base = make_phantom(kSeed, 2, 128, 64, kInbreastShare);
  EXPECT_NE(base.image, make_phantom(kSeed + 1, 2, 128, 64, kInbreastShare).image);
  EXPECT_NE(base.image, make_phantom(kSeed, 4, 128, 64, kInbreastShare).image);
}

TEST(Phantom, masks_match_the_mass_count) {
  for (int index = 0; index < 24; ++index) {
    const PhantomFilm film = make_phantom(kSeed, index, 256, 128, kInbreastShare);
    int mask_pixels = 0;
    for (uint8_t m : film.mask) mask_pixels += m;
    EXPECT_GE(film.mass_count, 0);
    EXPECT_LE(film.mass_count, 3);
    if (film.mass_count == 0) {
      EXPECT_EQ(mask_pixels, 0) << index;
    } else {
      // Radius >= 3% of 128 columns: each mass is several pixels wide.
      EXPECT_GE(mask_pixels, 15 * film.mass_count / 2) << index;
    }
  }
}

// Any run of consecutive films holds the share of mass-free films within two films, as a split
// of the phantom reader (consecutive indices) should; most films with masses hold one.
TEST(Phantom, every_run_of_films_holds_the_mass_free_share) {
  for (double share : {0.0, 0.25, kInbreastShare, 1.0}) {
    for (int length : {16, 48}) {
      for (int first : {0, 7, 48, 301}) {
        int with_masses = 0, single = 0;
        for (int index = first; index < first + length; ++index) {
          const int masses = make_phantom(kSeed, index, 64, 64, share).mass_count;
          with_masses += masses > 0;
          single += masses == 1;
        }
        const double expected = length * (1 - share);
        EXPECT_NEAR(with_masses, expected, 2.0)
            << "share " << share << ", films " << first << ".." << first + length - 1;
        if (with_masses >= 12) {
          EXPECT_GT(single, with_masses / 2) << share;
        }
      }
    }
  }
}

TEST(Phantom, other_families_place_the_masses_elsewhere) {
  int differ = 0;
  for (int index = 0; index < 32; ++index) {
    differ += (make_phantom(kSeed, index, 64, 64, kInbreastShare).mass_count > 0) !=
              (make_phantom(kSeed + 1, index, 64, 64, kInbreastShare).mass_count > 0);
  }
  EXPECT_GT(differ, 0);
}

TEST(Phantom, rejects_a_share_outside_zero_to_one) {
  EXPECT_THROW(make_phantom(kSeed, 0, 64, 64, -0.1), std::invalid_argument);
  EXPECT_THROW(make_phantom(kSeed, 0, 64, 64, 1.5), std::invalid_argument);
}

TEST(Phantom, masses_are_brighter_than_the_breast_around_them) {
  int checked = 0;
  for (int index = 0; index < 8; ++index) {
    const PhantomFilm film = make_phantom(kSeed, index, 512, 256, kNoneFree);
    double mass_sum = 0, tissue_sum = 0;
    int mass_count = 0, tissue_count = 0;
    for (size_t i = 0; i < film.image.size(); ++i) {
      if (film.mask[i]) {
        mass_sum += film.image[i];
        ++mass_count;
      } else if (film.image[i] > 16) {  // breast, not blank film
        tissue_sum += film.image[i];
        ++tissue_count;
      }
    }
    EXPECT_GT(mass_sum / mass_count, tissue_sum / tissue_count + 15) << index;
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

TEST(Phantom, masses_lie_inside_the_breast_and_background_is_dark) {
  for (int index = 0; index < 12; ++index) {
    const PhantomFilm film = make_phantom(kSeed, index, 256, 128, kInbreastShare);
    for (size_t i = 0; i < film.image.size(); ++i) {
      if (film.mask[i]) {
        EXPECT_GT(film.image[i], 24) << index << " pixel " << i;
      }
    }
    // The corner opposite the chest wall is blank film.
    const int far_col = index % 2 == 0 ? film.cols - 1 : 0;
    EXPECT_LE(film.image[far_col], 8) << index;
  }
}

TEST(Phantom, breast_alternates_sides_and_leaves_blank_columns_to_cut) {
  for (int index = 0; index < 6; ++index) {
    const PhantomFilm film = make_phantom(kSeed, index, 256, 128, kInbreastShare);
    const ColumnSpan span = non_blank_columns(as_grey(film), 0.04f);
    if (index % 2 == 0) {
      EXPECT_EQ(span.begin, 0) << index;
      EXPECT_LT(span.end, film.cols) << index;
    } else {
      EXPECT_GT(span.begin, 0) << index;
      EXPECT_EQ(span.end, film.cols) << index;
    }
  }
}

TEST(Phantom, works_at_the_smallest_size_and_rejects_smaller) {
  const PhantomFilm film = make_phantom(kSeed, 3, 64, 64, kInbreastShare);
  EXPECT_EQ(film.image.size(), 64u * 64u);
  EXPECT_THROW(make_phantom(kSeed, 0, 63, 64, kInbreastShare), std::invalid_argument);
  EXPECT_THROW(make_phantom(kSeed, 0, 64, 32, kInbreastShare), std::invalid_argument);
  EXPECT_THROW(make_phantom(kSeed, -1, 64, 64, kInbreastShare), std::invalid_argument);
}

TEST(Phantom, ids_and_splits_rotate_three_one_one) {
  EXPECT_EQ(phantom_id(7), "phantom-0007");
  EXPECT_EQ(phantom_id(12345), "phantom-12345");
  const char* expected[] = {"train", "train", "train", "val", "test"};
  for (int index = 0; index < 10; ++index) EXPECT_STREQ(phantom_split(index), expected[index % 5]);
}

TEST(PhantomFolder, writes_images_masks_and_split_lists) {
  testing::TempDir dir;
  const std::filesystem::path root = dir.path() / "new" / "phantoms";
  write_phantom_folder(root.string(), 7, kSeed, 96, 64, kInbreastShare);
  EXPECT_EQ(read_lines(root / "split" / "train.txt"),
            (std::vector<std::string>{"phantom-0000", "phantom-0001", "phantom-0002",
                                      "phantom-0005", "phantom-0006"}));
  EXPECT_EQ(read_lines(root / "split" / "val.txt"), std::vector<std::string>{"phantom-0003"});
  EXPECT_EQ(read_lines(root / "split" / "test.txt"), std::vector<std::string>{"phantom-0004"});
  for (int index = 0; index < 7; ++index) {
    const PhantomFilm film = make_phantom(kSeed, index, 96, 64, kInbreastShare);
    const GreyImage image = read_grey_png((root / "img" / (phantom_id(index) + ".png")).string());
    const GreyImage mask = read_grey_png((root / "label" / (phantom_id(index) + ".png")).string());
    EXPECT_EQ(std::vector<uint16_t>(film.image.begin(), film.image.end()), image.pixels);
    std::vector<uint16_t> expected_mask;  // written as 0 / 255, visible in any image viewer
    for (uint8_t m : film.mask) expected_mask.push_back(m != 0 ? 255 : 0);
    EXPECT_EQ(expected_mask, mask.pixels);
  }
}

TEST(PhantomFolder, unwritable_folder_is_named) {
  testing::TempDir dir;
  testing::write_text(dir.path() / "file", "x");  // a file where a folder should go
  const std::string root = (dir.path() / "file" / "phantoms").string();
  testing::expect_data_error([&] { write_phantom_folder(root, 1, kSeed, 64, 64, kInbreastShare); },
                             {root});
}

}  // namespace
}  // namespace hds::data

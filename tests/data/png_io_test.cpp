#include "hds/data/png_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "hds/data/crc32.h"
#include "hds/data/dataset.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

using testing::expect_data_error;
using testing::TempDir;
using testing::write_png_raw;

TEST(PngIo, eight_bit_round_trip_is_exact) {
  TempDir dir;
  const int rows = 37, cols = 53;
  std::vector<uint8_t> pixels(rows * cols);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 97 + 13) % 256);
  const std::string path = dir.file("round.png");
  write_grey_png(path, rows, cols, pixels);
  const GreyImage image = read_grey_png(path);
  EXPECT_EQ(image.rows, rows);
  EXPECT_EQ(image.cols, cols);
  EXPECT_EQ(image.max_level, 255);
  ASSERT_EQ(image.pixels.size(), pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) ASSERT_EQ(image.pixels[i], pixels[i]) << i;
}

TEST(PngIo, sixteen_bit_grey_written_by_libpng_reads_back_exactly) {
  TempDir dir;
  const int rows = 3, cols = 4;
  const std::vector<uint16_t> levels = {0,     1,     255,   256,   4660, 32768,
                                        40000, 65534, 65535, 12345, 511,  2};
  const std::string path = dir.file("deep.png");
  ASSERT_TRUE(testing::write_png16_grey(path, rows, cols, levels));
  const GreyImage image = read_grey_png(path);
  EXPECT_EQ(image.rows, rows);
  EXPECT_EQ(image.cols, cols);
  EXPECT_EQ(image.max_level, 65535);
  EXPECT_EQ(image.pixels, levels);
}

TEST(PngIo, a_deep_film_is_written_as_sixteen_bits_with_its_grey_levels_kept) {
  TempDir dir;
  GreyImage film;  // 12-bit levels, as a DICOM film's
  film.rows = 2;
  film.cols = 3;
  film.max_level = 4095;
  film.pixels = {0, 1, 2048, 4094, 4095, 100};
  const std::string path = dir.file("deep.png");
  write_grey_png(path, film);
  const GreyImage back = read_grey_png(path);
  EXPECT_EQ(back.max_level, 65535);
  ASSERT_EQ(back.pixels.size(), film.pixels.size());
  for (size_t i = 0; i < film.pixels.size(); ++i)  // the same 0..1 level, to half a 16-bit step
    EXPECT_NEAR(back.pixels[i] / 65535.0, film.pixels[i] / 4095.0, 0.5 / 65535) << i;
}

TEST(PngIo, an_eight_bit_film_is_written_as_eight_bits_exactly) {
  TempDir dir;
  GreyImage film;
  film.rows = 1;
  film.cols = 4;
  film.pixels = {0, 17, 254, 255};
  write_grey_png(dir.file("film.png"), film);
  const GreyImage back = read_grey_png(dir.file("film.png"));
  EXPECT_EQ(back.max_level, 255);
  EXPECT_EQ(back.pixels, film.pixels);
}

TEST(PngIo, one_bit_grey_is_scaled_to_eight_bits) {
  TempDir dir;
  const std::string path = dir.file("bits.png");
  ASSERT_TRUE(write_png_raw(path, 8, 1, 1, PNG_COLOR_TYPE_GRAY, {0b10100000}));
  const GreyImage image = read_grey_png(path);
  EXPECT_EQ(image.max_level, 255);
  EXPECT_EQ(image.pixels, (std::vector<uint16_t>{255, 0, 255, 0, 0, 0, 0, 0}));
}

TEST(PngIo, truncated_file_names_the_file) {
  TempDir dir;
  const std::string path = dir.file("cut.png");
  std::vector<uint8_t> pixels(64 * 64);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7919 % 251);
  write_grey_png(path, 64, 64, pixels);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  expect_data_error([&] { read_grey_png(path); }, {path, "truncated"});
}

TEST(PngIo, file_cut_inside_the_header_names_the_file) {
  TempDir dir;
  const std::string path = dir.file("header.png");
  write_grey_png(path, 4, 4, std::vector<uint8_t>(16, 9));
  std::filesystem::resize_file(path, 20);
  expect_data_error([&] { read_grey_png(path); }, {path, "truncated"});
}

TEST(PngIo, colour_image_is_rejected_naming_file_and_kind) {
  TempDir dir;
  const std::string path = dir.file("colour.png");
  ASSERT_TRUE(write_png_raw(path, 2, 1, 8, PNG_COLOR_TYPE_RGB, {1, 2, 3, 4, 5, 6}));
  expect_data_error([&] { read_grey_png(path); }, {path, "RGB", "expected a grey image"});
}

TEST(PngIo, grey_with_alpha_is_rejected) {
  TempDir dir;
  const std::string path = dir.file("alpha.png");
  ASSERT_TRUE(write_png_raw(path, 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, {1, 255, 3, 255}));
  expect_data_error([&] { read_grey_png(path); }, {path, "grey with alpha"});
}

TEST(PngIo, missing_file_names_the_file) {
  TempDir dir;
  const std::string path = dir.file("nowhere.png");
  expect_data_error([&] { read_grey_png(path); }, {path, "No such file"});
}

TEST(PngIo, non_png_file_names_the_file) {
  TempDir dir;
  const std::string path = dir.file("text.png");
  testing::write_text(path, "this is not an image at all");
  expect_data_error([&] { read_grey_png(path); }, {path, "not a PNG"});
}

// A 302-byte PNG can declare 16384 x 16384 pixels (half a gigabyte of levels to decode): refused
// from its header by the film budget, before any pixel is allocated.
TEST(PngIo, a_film_declaring_more_than_the_pixel_budget_is_refused_from_its_header) {
  TempDir dir;
  const std::string path = dir.file("bomb.png");
  write_grey_png(path, 1, 1, {0});
  std::string png = hds::test::read_text(path);
  // IHDR's data (width, height, ...) starts at byte 16; its CRC-32 covers "IHDR" and the data.
  auto put32 = [&](size_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>(value >> (24 - 8 * i));
  };
  put32(16, 16384);
  put32(20, 16384);
  put32(29, crc32_of(png.data() + 12, 17));
  testing::write_text(path, png);
  expect_data_error([&] { read_grey_png(path); },
                    {path, "PNG declares 16384 x 16384 = 268435456 pixels",
                     "above data.max_film_pixels (33554432): refused before decoding"});
  // The budget is the caller's: a 64 x 64 film against 1000 pixels.
  write_grey_png(dir.file("small.png"), 64, 64, std::vector<uint8_t>(64 * 64, 1));
  EXPECT_EQ(read_grey_png(dir.file("small.png"), 4096).rows, 64);
  expect_data_error([&] { read_grey_png(dir.file("small.png"), 1000); },
                    {"PNG declares 64 x 64 = 4096 pixels, above data.max_film_pixels (1000)"});
}

TEST(PngIo, unwritable_path_names_the_file) {
  TempDir dir;
  const std::string path = dir.file("no/such/folder/x.png");
  expect_data_error([&] { write_grey_png(path, 1, 1, {0}); }, {path});
}

}  // namespace
}  // namespace hds::data

// Binary PGM decoding: 8- and 16-bit levels, header comments, and every refusal naming the file.
#include "hds/data/pgm_io.h"

#include <gtest/gtest.h>

#include "test_helpers.h"

namespace hds::data {
namespace {

using testing::expect_data_error;
using testing::pgm_bytes;
using testing::TempDir;
using testing::write_text;

TEST(Pgm, reads_8_bit_levels_row_major) {
  const GreyImage image = decode_pgm(pgm_bytes(2, 3, 255, {0, 1, 2, 253, 254, 255}), "a.pgm");
  EXPECT_EQ(image.rows, 2);
  EXPECT_EQ(image.cols, 3);
  EXPECT_EQ(image.max_level, 255);
  EXPECT_EQ(image.pixels, (std::vector<uint16_t>{0, 1, 2, 253, 254, 255}));
}

TEST(Pgm, reads_16_bit_levels_big_endian_with_maxval_as_white) {
  const GreyImage image = decode_pgm(pgm_bytes(1, 3, 4095, {0, 258, 4095}), "a.pgm");
  EXPECT_EQ(image.max_level, 4095);
  EXPECT_EQ(image.pixels, (std::vector<uint16_t>{0, 258, 4095}));
}

TEST(Pgm, allows_comments_and_any_whitespace_in_the_header) {
  const std::string bytes = std::string("P5 # scanner 7\n\t2\r\n# size\n1 \n 255\n") + "\x07\x09";
  const GreyImage image = decode_pgm(bytes, "a.pgm");
  EXPECT_EQ(image.rows, 1);
  EXPECT_EQ(image.cols, 2);
  EXPECT_EQ(image.pixels, (std::vector<uint16_t>{7, 9}));
}

TEST(Pgm, ignores_data_after_the_first_image) {
  const GreyImage image = decode_pgm(pgm_bytes(1, 1, 255, {5}) + "P5\n1 1\n255\n\x06", "a.pgm");
  EXPECT_EQ(image.pixels, (std::vector<uint16_t>{5}));
}

TEST(Pgm, truncated_pixels_name_the_file_and_the_shortfall) {
  std::string bytes = pgm_bytes(4, 4, 255, std::vector<uint16_t>(16, 9));
  bytes.resize(bytes.size() - 6);
  expect_data_error([&] { decode_pgm(bytes, "films/mdb001.pgm"); },
                    {"films/mdb001.pgm: truncated PGM: 10 of 16 pixel bytes"});
}

TEST(Pgm, truncated_16_bit_pixels_count_two_bytes_each) {
  std::string bytes = pgm_bytes(2, 2, 65535, {1, 2, 3, 4});
  bytes.pop_back();
  expect_data_error([&] { decode_pgm(bytes, "a.pgm"); }, {"a.pgm: truncated PGM: 7 of 8"});
}

TEST(Pgm, plain_text_pgm_and_other_formats_are_bad_magic) {
  expect_data_error([&] { decode_pgm("P2\n1 1\n255\n7\n", "a.pgm"); },
                    {"a.pgm: not a binary PGM: starts with \"P2\"; expected \"P5\""});
  expect_data_error([&] { decode_pgm("\x89PNG", "b.pgm"); }, {"b.pgm", "\\x89P", "P5"});
  expect_data_error([&] { decode_pgm("", "c.pgm"); }, {"c.pgm: not a binary PGM"});
}

TEST(Pgm, header_problems_name_the_file_and_the_field) {
  expect_data_error([&] { decode_pgm("P5\n12\n", "a.pgm"); },
                    {"a.pgm: bad PGM header", "ends before the height"});
  expect_data_error([&] { decode_pgm("P5\n12 x\n255\n", "a.pgm"); },
                    {"a.pgm: bad PGM header", "expected the height", "found 'x'"});
  expect_data_error([&] { decode_pgm("P512 12\n255\n", "a.pgm"); },
                    {"a.pgm: bad PGM header", "whitespace before the width"});
  expect_data_error([&] { decode_pgm("P5\n1 1\n255", "a.pgm"); },
                    {"a.pgm: bad PGM header", "one whitespace byte after the maxval"});
  expect_data_error([&] { decode_pgm("P5\n0 4\n255\n", "a.pgm"); },
                    {"a.pgm: bad PGM header: the image is 4x0"});
  expect_data_error([&] { decode_pgm("P5\n99999999999 4\n255\n", "a.pgm"); },
                    {"a.pgm: bad PGM header", "width has too many digits"});
}

TEST(Pgm, maxval_outside_1_to_65535_is_refused) {
  expect_data_error([&] { decode_pgm("P5\n1 1\n0\n", "a.pgm"); },
                    {"a.pgm: PGM maxval 0 out of range 1..65535"});
  expect_data_error([&] { decode_pgm("P5\n1 1\n65536\n", "a.pgm"); },
                    {"a.pgm: PGM maxval 65536 out of range 1..65535"});
}

TEST(Pgm, level_above_maxval_is_refused_with_its_position) {
  expect_data_error(
      [&] {
        decode_pgm(pgm_bytes(2, 2, 100, {0, 0, 0, 101}), "a.pgm");
      },
      {"a.pgm: PGM pixel at row 1, column 1 is 101, above the maxval 100"});
}

TEST(Pgm, read_pgm_names_a_missing_file) {
  TempDir dir;
  expect_data_error([&] { read_pgm(dir.file("none.pgm")); }, {dir.file("none.pgm"), "cannot"});
  write_text(dir.path() / "ok.pgm", pgm_bytes(1, 2, 255, {3, 4}));
  EXPECT_EQ(read_pgm(dir.file("ok.pgm")).pixels, (std::vector<uint16_t>{3, 4}));
}

}  // namespace
TEST(PgmIo, a_header_declaring_more_than_the_pixel_budget_is_refused) {
  expect_data_error([&] { decode_pgm("P5\n65536 65536\n255\n", "huge.pgm"); },
                    {"huge.pgm: PGM declares 65536 x 65536 = 4294967296 pixels",
                     "above data.max_film_pixels (33554432)"});
  expect_data_error(
      [&] {
        decode_pgm(pgm_bytes(2, 3, 255, {0, 1, 2, 3, 4, 5}), "a.pgm", 5);
      },
      {"a.pgm: PGM declares 2 x 3 = 6 pixels, above data.max_film_pixels (5)"});
}

}  // namespace hds::data

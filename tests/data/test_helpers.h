// Helpers shared by the hds_data tests: a temporary folder and a libpng writer that is independent
// of the code under test (so reader tests do not only check the library against itself).
#pragma once

#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "hds/data/dataset.h"
#include "hds/test/files.h"

namespace hds::data::testing {

using hds::test::TempDir;
using hds::test::write_text;

// The lines of a text file (an id list), none when it cannot be read.
inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Expects `call` to throw a DataError whose message contains every string of `parts`.
template <class Call>
void expect_data_error(Call call, std::initializer_list<std::string> parts) {
  try {
    call();
    ADD_FAILURE() << "no DataError thrown";
  } catch (const DataError& error) {
    for (const std::string& part : parts)
      EXPECT_NE(std::string(error.what()).find(part), std::string::npos)
          << "message \"" << error.what() << "\" lacks \"" << part << "\"";
  }
}

namespace detail {
inline bool write_png_rows(png_structp png, png_infop info, std::FILE* file, int width, int height,
                           int bit_depth, int colour_type, std::vector<png_bytep>& rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, bit_depth, colour_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  return true;
}
}  // namespace detail

// Writes a PNG straight through libpng. `bytes` holds the packed rows exactly as PNG stores them
// (16-bit samples big-endian). Returns false on failure.
inline bool write_png_raw(const std::string& path, int width, int height, int bit_depth,
                          int colour_type, std::vector<uint8_t> bytes) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const size_t row_bytes = bytes.size() / height;
  std::vector<png_bytep> rows(height);
  for (int r = 0; r < height; ++r) rows[r] = bytes.data() + r * row_bytes;
  const bool ok =
      detail::write_png_rows(png, info, file, width, height, bit_depth, colour_type, rows);
  png_destroy_write_struct(&png, &info);
  return std::fclose(file) == 0 && ok;
}

// Writes 16-bit grey samples as a 16-bit grey PNG.
inline bool write_png16_grey(const std::string& path, int rows, int cols,
                             const std::vector<uint16_t>& levels) {
  std::vector<uint8_t> bytes;
  for (uint16_t level : levels) {
    bytes.push_back(static_cast<uint8_t>(level >> 8));
    bytes.push_back(static_cast<uint8_t>(level & 0xFF));
  }
  return write_png_raw(path, cols, rows, 16, PNG_COLOR_TYPE_GRAY, bytes);
}

// The bytes of a binary PGM ("P5"): one byte per level for maxval <= 255, else two, big-endian.
inline std::string pgm_bytes(int rows, int cols, int maxval, const std::vector<uint16_t>& levels) {
  std::string bytes = "P5\n" + std::to_string(cols) + " " + std::to_string(rows) + "\n" +
                      std::to_string(maxval) + "\n";
  for (uint16_t level : levels) {
    if (maxval > 255) bytes += static_cast<char>(level >> 8);
    bytes += static_cast<char>(level & 0xFF);
  }
  return bytes;
}

}  // namespace hds::data::testing

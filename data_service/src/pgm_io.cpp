// Binary PGM decoding, strict: every header field is checked and every message names the file.
#include "hds/data/pgm_io.h"

#include <cstdint>
#include <cstdio>

#include "hds/data/dataset.h"
#include "read_file.h"

namespace hds::data {
namespace {

// Far above any mammogram yet small enough that a hostile header cannot make us allocate
// gigabytes (as in png_io.cpp).
constexpr uint64_t kMaxMaxval = 65535;
constexpr int kMaxDigits = 9;  // keeps a header number far below overflow

bool is_pgm_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "P5", or the bytes found instead, escaped where not printable.
std::string shown_bytes(const std::string& bytes, size_t count) {
  std::string shown;
  for (size_t i = 0; i < count && i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      shown += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      shown += escaped;
    }
  }
  return shown;
}

// Reads the decimal fields of a PGM header, skipping the whitespace and comments between them.
class HeaderCursor {
 public:
  HeaderCursor(const std::string& bytes, const std::string& name, size_t start)
      : bytes_(bytes), name_(name), position_(start) {}

  // The next field, called `what` in errors.
  uint64_t number(const char* what) {
    const size_t before = position_;
    skip_space_and_comments();
    if (position_ >= bytes_.size()) fail(std::string("the header ends before the ") + what);
    if (position_ == before) fail(std::string("expected whitespace before the ") + what);
    if (!is_digit(bytes_[position_]))
      fail(std::string("expected the ") + what + " (a decimal number), found '" +
           shown_bytes(bytes_.substr(position_), 1) + "'");
    uint64_t value = 0;
    int digits = 0;
    for (; position_ < bytes_.size() && is_digit(bytes_[position_]); ++position_, ++digits) {
      if (digits == kMaxDigits) fail(std::string("the ") + what + " has too many digits");
      value = value * 10 + static_cast<uint64_t>(bytes_[position_] - '0');
    }
    return value;
  }

  // The single whitespace byte that ends the header; returns where the pixels start.
  size_t end_of_header() {
    if (position_ >= bytes_.size() || !is_pgm_space(bytes_[position_]))
      fail("expected one whitespace byte after the maxval, before the pixels");
    return position_ + 1;
  }

 private:
  void skip_space_and_comments() {
    while (position_ < bytes_.size()) {
      if (is_pgm_space(bytes_[position_])) {
        ++position_;
      } else if (bytes_[position_] == '#') {
        while (position_ < bytes_.size() && bytes_[position_] != '\n' && bytes_[position_] != '\r')
          ++position_;
      } else {
        return;
      }
    }
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError(name_ + ": bad PGM header at byte " + std::to_string(position_) + ": " +
                    problem);
  }

  const std::string& bytes_;
  const std::string& name_;
  size_t position_;
};

void check_magic(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 2 || bytes[0] != 'P' || bytes[1] != '5')
    throw DataError(name + ": not a binary PGM: starts with \"" + shown_bytes(bytes, 2) +
                    "\"; expected \"P5\"");
}

void check_size(uint64_t cols, uint64_t rows, uint64_t maxval, const std::string& name,
                uint64_t max_pixels) {
  if (cols == 0 || rows == 0)
    throw DataError(name + ": bad PGM header: the image is " + std::to_string(rows) + "x" +
                    std::to_string(cols) + " (rows x cols); both must be positive");
  check_film_pixels(name, "PGM", rows, cols, max_pixels);
  if (maxval < 1 || maxval > kMaxMaxval)
    throw DataError(name + ": PGM maxval " + std::to_string(maxval) + " out of range 1..65535");
}

// Pixel values come big-endian in two bytes when maxval exceeds 255, else in one.
void decode_pixels(const std::string& bytes, size_t start, GreyImage& image,
                   const std::string& name) {
  const size_t count = static_cast<size_t>(image.rows) * image.cols;
  const size_t bytes_per_pixel = image.max_level > 255 ? 2 : 1;
  const size_t available = bytes.size() - start;
  if (available < count * bytes_per_pixel)
    throw DataError(name + ": truncated PGM: " + std::to_string(available) + " of " +
                    std::to_string(count * bytes_per_pixel) + " pixel bytes (" +
                    std::to_string(image.rows) + "x" + std::to_string(image.cols) + ", " +
                    std::to_string(bytes_per_pixel) + " byte(s) per pixel)");
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data() + start);
  image.pixels.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const unsigned value = bytes_per_pixel == 2 ? (data[2 * i] << 8 | data[2 * i + 1]) : data[i];
    if (value > static_cast<unsigned>(image.max_level))
      throw DataError(name + ": PGM pixel at row " + std::to_string(i / image.cols) + ", column " +
                      std::to_string(i % image.cols) + " is " + std::to_string(value) +
                      ", above the maxval " + std::to_string(image.max_level));
    image.pixels[i] = static_cast<uint16_t>(value);
  }
}

}  // namespace

GreyImage decode_pgm(const std::string& bytes, const std::string& name, uint64_t max_pixels) {
  check_magic(bytes, name);
  HeaderCursor header(bytes, name, 2);
  const uint64_t cols = header.number("width");
  const uint64_t rows = header.number("height");
  const uint64_t maxval = header.number("maxval");
  const size_t pixel_start = header.end_of_header();
  check_size(cols, rows, maxval, name, max_pixels);

  GreyImage image;
  image.rows = static_cast<int>(rows);
  image.cols = static_cast<int>(cols);
  image.max_level = static_cast<int>(maxval);
  decode_pixels(bytes, pixel_start, image, name);
  return image;
}

GreyImage read_pgm(const std::string& path, uint64_t max_pixels) {
  return decode_pgm(detail::read_data_file(path), path, max_pixels);
}

}  // namespace hds::data

// libpng reports errors by longjmp. C++ exceptions must not travel through libpng's C frames, so
// every libpng call runs inside a small function that owns the setjmp point and keeps all mutable
// state in a struct owned by its caller; the caller turns a failure into a DataError after the
// function has returned normally.
#include "hds/data/png_io.h"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "hds/common/read_file.h"
#include "hds/data/dataset.h"

namespace hds::data {
namespace {

constexpr int kSignatureBytes = 8;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// libpng's message goes here; the handler then longjmps back to the setjmp point.
struct PngErrorSlot {
  char message[256] = "unknown libpng error";
};

void store_error_and_jump(png_structp png, png_const_charp message) {
  auto* slot = static_cast<PngErrorSlot*>(png_get_error_ptr(png));
  std::snprintf(slot->message, sizeof slot->message, "%s", message);
  png_longjmp(png, 1);
}

void ignore_warning(png_structp, png_const_charp) {}

std::string describe_colour_type(int colour_type, int bit_depth) {
  const std::string depth = std::to_string(bit_depth) + "-bit ";
  switch (colour_type) {
    case PNG_COLOR_TYPE_RGB:
      return depth + "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA:
      return depth + "RGB with alpha";
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return depth + "grey with alpha";
    case PNG_COLOR_TYPE_PALETTE:
      return depth + "palette-colour";
    default:
      return depth + "colour type " + std::to_string(colour_type);
  }
}

// ---- reading ----

struct PngReader {
  std::FILE* file = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngErrorSlot error;
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 0;
  int colour_type = 0;
  std::vector<png_byte> bytes;  // decoded rows, 8- or 16-bit big-endian samples
  std::vector<png_bytep> row_pointers;

  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

// Reads the header. Returns false when libpng reported an error (reader.error says which).
bool read_png_header(PngReader& reader) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  png_init_io(reader.png, reader.file);
  png_set_sig_bytes(reader.png, kSignatureBytes);
  png_read_info(reader.png, reader.info);
  png_get_IHDR(reader.png, reader.info, &reader.width, &reader.height, &reader.bit_depth,
               &reader.colour_type, nullptr, nullptr, nullptr);
  return true;
}

// Decodes all rows of a grey image into reader.bytes. Returns false on a libpng error.
bool read_png_rows(PngReader& reader) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  if (reader.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(reader.png);
  png_set_interlace_handling(reader.png);
  png_read_update_info(reader.png, reader.info);
  const size_t row_bytes = png_get_rowbytes(reader.png, reader.info);
  reader.bytes.resize(row_bytes * reader.height);
  reader.row_pointers.resize(reader.height);
  for (png_uint_32 row = 0; row < reader.height; ++row)
    reader.row_pointers[row] = reader.bytes.data() + row * row_bytes;
  png_read_image(reader.png, reader.row_pointers.data());
  png_read_end(reader.png, nullptr);  // checks the trailing chunks' CRCs too
  return true;
}

FilePtr open_or_throw(const std::string& path, const char* mode, const char* action) {
  FilePtr file(std::fopen(path.c_str(), mode));
  if (!file) throw DataError(path + ": cannot " + action + ": " + std::strerror(errno));
  return file;
}

void check_signature(std::FILE* file, const std::string& path) {
  png_byte signature[kSignatureBytes];
  const size_t got = std::fread(signature, 1, kSignatureBytes, file);
  if (got < kSignatureBytes || png_sig_cmp(signature, 0, kSignatureBytes) != 0)
    throw DataError(path + ": not a PNG file (no PNG signature)");
}

GreyImage to_grey_image(const PngReader& reader) {
  GreyImage image;
  image.rows = static_cast<int>(reader.height);
  image.cols = static_cast<int>(reader.width);
  image.max_level = reader.bit_depth == 16 ? 65535 : 255;
  const size_t count = static_cast<size_t>(reader.width) * reader.height;
  image.pixels.resize(count);
  if (reader.bit_depth == 16) {
    for (size_t i = 0; i < count; ++i)  // PNG stores 16-bit samples big-endian
      image.pixels[i] = static_cast<uint16_t>(reader.bytes[2 * i] << 8 | reader.bytes[2 * i + 1]);
  } else {
    for (size_t i = 0; i < count; ++i) image.pixels[i] = reader.bytes[i];
  }
  return image;
}

// ---- writing ----

struct PngWriter {
  std::FILE* file = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngErrorSlot error;
  std::vector<png_bytep> row_pointers;

  ~PngWriter() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

bool write_png_rows(PngWriter& writer, int rows, int cols, int colour_type, int bit_depth) {
  if (setjmp(png_jmpbuf(writer.png))) return false;
  png_init_io(writer.png, writer.file);
  png_set_IHDR(writer.png, writer.info, static_cast<png_uint_32>(cols),
               static_cast<png_uint_32>(rows), bit_depth, colour_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(writer.png, writer.info);
  png_write_image(writer.png, writer.row_pointers.data());
  png_write_end(writer.png, nullptr);
  return true;
}

// Decodes the PNG in `file`; `path` names it in errors.
GreyImage decode_grey_png_stream(std::FILE* file, const std::string& path, uint64_t max_pixels) {
  check_signature(file, path);

  PngReader reader;
  reader.file = file;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader.error, store_error_and_jump,
                                      ignore_warning);
  if (reader.png) reader.info = png_create_info_struct(reader.png);
  if (!reader.png || !reader.info) throw DataError(path + ": libpng could not allocate its state");

  if (!read_png_header(reader))
    throw DataError(path + ": corrupt or truncated PNG (libpng: " + reader.error.message + ")");
  if (reader.colour_type != PNG_COLOR_TYPE_GRAY)
    throw DataError(path + ": PNG is " +
                    describe_colour_type(reader.colour_type, reader.bit_depth) +
                    "; expected a grey image");
  check_film_pixels(path, "PNG", reader.height, reader.width, max_pixels);
  if (!read_png_rows(reader))
    throw DataError(path + ": corrupt or truncated PNG (libpng: " + reader.error.message + ")");
  return to_grey_image(reader);
}

}  // namespace

GreyImage read_grey_png(const std::string& path, uint64_t max_pixels) {
  FilePtr file = open_or_throw(path, "rb", "open");
  return decode_grey_png_stream(file.get(), path, max_pixels);
}

GreyImage decode_grey_png(const std::string& bytes, const std::string& name, uint64_t max_pixels) {
  if (bytes.empty()) throw DataError(name + ": not a PNG file (empty)");
  // fmemopen gives libpng the same FILE* path as a file on disk.
  FilePtr file(fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb"));
  if (!file) throw DataError(name + ": cannot open the PNG bytes: " + std::strerror(errno));
  return decode_grey_png_stream(file.get(), name, max_pixels);
}

namespace {

// write_png's work on the file at `partial`; errors name `path`.
void write_png_file(const std::string& partial, const std::string& path, int rows, int cols,
                    int channels, int bit_depth, const std::vector<uint8_t>& bytes,
                    size_t row_bytes) {
  FilePtr file(std::fopen(partial.c_str(), "wb"));
  if (!file) throw DataError(path + ": cannot write: " + std::strerror(errno));

  PngWriter writer;
  writer.file = file.get();
  writer.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &writer.error, store_error_and_jump,
                                       ignore_warning);
  if (writer.png) writer.info = png_create_info_struct(writer.png);
  if (!writer.png || !writer.info) throw DataError(path + ": libpng could not allocate its state");
  writer.row_pointers.resize(rows);
  for (int row = 0; row < rows; ++row)  // libpng's API is not const-correct; it only reads rows
    writer.row_pointers[row] = const_cast<png_bytep>(bytes.data() + row * row_bytes);

  if (!write_png_rows(writer, rows, cols, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                      bit_depth))
    throw DataError(path + ": cannot write PNG (libpng: " + writer.error.message + ")");
  if (std::fflush(file.get()) != 0 || std::ferror(file.get()))
    throw DataError(path + ": cannot write: " + std::strerror(errno));
  if (std::fclose(file.release()) != 0)
    throw DataError(path + ": cannot write: " + std::strerror(errno));
}

// A PNG of `channels` samples a pixel (1 grey, 3 RGB) of `bit_depth` 8 or 16; `bytes` holds the
// samples as PNG stores them (16-bit ones big-endian).
void write_png(const std::string& path, int rows, int cols, int channels, int bit_depth,
               const std::vector<uint8_t>& bytes) {
  const size_t row_bytes = static_cast<size_t>(cols) * channels * (bit_depth / 8);
  if (rows <= 0 || cols <= 0 || bytes.size() != rows * row_bytes)
    throw DataError(path + ": cannot write a " + std::to_string(rows) + "x" + std::to_string(cols) +
                    " PNG from " + std::to_string(bytes.size()) + " bytes");
  hds::common::replace_file_by(path, [&](const std::string& partial) {
    write_png_file(partial, path, rows, cols, channels, bit_depth, bytes, row_bytes);
  });
}

}  // namespace

void write_grey_png(const std::string& path, int rows, int cols,
                    const std::vector<uint8_t>& pixels) {
  write_png(path, rows, cols, 1, 8, pixels);
}

void write_grey_png(const std::string& path, const GreyImage& image) {
  const size_t count = static_cast<size_t>(image.rows) * image.cols;
  if (image.max_level <= 0 || image.pixels.size() != count)
    throw DataError(path + ": cannot write a " + std::to_string(image.rows) + "x" +
                    std::to_string(image.cols) + " PNG from " +
                    std::to_string(image.pixels.size()) + " pixels of max level " +
                    std::to_string(image.max_level));
  if (image.max_level == 255) {
    std::vector<uint8_t> levels(image.pixels.begin(), image.pixels.end());
    write_png(path, image.rows, image.cols, 1, 8, levels);
    return;
  }
  std::vector<uint8_t> bytes(2 * count);
  const double scale = 65535.0 / image.max_level;
  for (size_t i = 0; i < count; ++i) {
    const auto level = static_cast<uint16_t>(
        std::lround(std::min<double>(image.pixels[i], image.max_level) * scale));
    bytes[2 * i] = static_cast<uint8_t>(level >> 8);  // big-endian, as PNG stores 16-bit samples
    bytes[2 * i + 1] = static_cast<uint8_t>(level & 0xff);
  }
  write_png(path, image.rows, image.cols, 1, 16, bytes);
}

void write_rgb_png(const std::string& path, int rows, int cols, const std::vector<uint8_t>& rgb) {
  write_png(path, rows, cols, 3, 8, rgb);
}

}  // namespace hds::data

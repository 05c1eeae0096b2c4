// libFuzzer target: grey PNG decoding through libpng (setjmp/longjmp error paths). Any input
// decodes to a consistent image or raises DataError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/png_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto image = hds::data::decode_grey_png(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.png");
    if (image.pixels.size() != static_cast<size_t>(image.rows) * image.cols) __builtin_trap();
  } catch (const hds::data::DataError&) {
  }
  return 0;
}

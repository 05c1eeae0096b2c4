// libFuzzer target: binary PGM decoding. Any input either decodes to a consistent image or
// raises DataError; anything else (a crash, another exception, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/pgm_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto image =
        hds::data::decode_pgm(std::string(reinterpret_cast<const char*>(data), size), "fuzz.pgm");
    if (image.pixels.size() != static_cast<size_t>(image.rows) * image.cols) __builtin_trap();
    for (uint16_t level : image.pixels) {
      if (level > image.max_level) __builtin_trap();
    }
  } catch (const hds::data::DataError&) {
  }
  return 0;
}

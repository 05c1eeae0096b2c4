// libFuzzer target: the mini-MIAS Info.txt parser. Bad rows must raise DataError, never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/mini_mias.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hds::data::parse_mias_info(std::string(reinterpret_cast<const char*>(data), size), "Info.txt");
  } catch (const hds::data::DataError&) {
  }
  return 0;
}

// libFuzzer target: the INbreast OsiriX plist ROI parser. Bad XML must raise DataError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/inbreast.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hds::data::parse_osirix_rois(std::string(reinterpret_cast<const char*>(data), size), "roi.xml");
  } catch (const hds::data::DataError&) {
  }
  return 0;
}

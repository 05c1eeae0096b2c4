// A decoded grey film before preprocessing: raw levels and the level that means "white".
#pragma once

#include <cstdint>
#include <vector>

namespace hds::data {

struct GreyImage {
  int rows = 0;
  int cols = 0;
  int max_level = 255;           // 255 for 8-bit sources, 65535 for 16-bit ones
  std::vector<uint16_t> pixels;  // rows x cols, row-major, each in [0, max_level]
};

}  // namespace hds::data

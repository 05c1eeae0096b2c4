// Drawing annotated masses into a film-sized mask (rows x cols, row-major, 1 = mass).
#pragma once

#include <cstdint>
#include <vector>

#include "hds/data/inbreast.h"

namespace hds::data::detail {

// Sets every pixel (r, c) with (c - centre_col)^2 + (r - centre_row)^2 <= radius^2; the parts of
// the circle outside the mask are cut off.
void fill_circle(std::vector<uint8_t>& mask, int rows, int cols, int centre_row, int centre_col,
                 int radius);

// Fills the closed polygon through `points` (x = column, y = row) with cv::fillPoly at 1/256 pixel
// precision; pixels on the outline are included.
void fill_polygon(std::vector<uint8_t>& mask, int rows, int cols,
                  const std::vector<RoiPoint>& points);

// The number of 8-connected regions of non-zero pixels: the masses of a mask drawn elsewhere
// (touching masses count as one).
int count_regions(const std::vector<uint8_t>& mask, int rows, int cols);

}  // namespace hds::data::detail

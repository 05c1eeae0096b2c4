#include "mask_drawing.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace hds::data::detail {
namespace {

// cv::fillPoly takes fixed-point vertices with this many fractional bits.
constexpr int kFractionBits = 8;

}  // namespace

void fill_circle(std::vector<uint8_t>& mask, int rows, int cols, int centre_row, int centre_col,
                 int radius) {
  const int64_t radius_squared = int64_t{radius} * radius;
  const int first_row = std::max(0, centre_row - radius);
  const int last_row = std::min(rows - 1, centre_row + radius);
  const int first_col = std::max(0, centre_col - radius);
  const int last_col = std::min(cols - 1, centre_col + radius);
  for (int r = first_row; r <= last_row; ++r) {
    const int64_t dr = r - centre_row;
    for (int c = first_col; c <= last_col; ++c) {
      const int64_t dc = c - centre_col;
      if (dc * dc + dr * dr <= radius_squared) mask[static_cast<size_t>(r) * cols + c] = 1;
    }
  }
}

void fill_polygon(std::vector<uint8_t>& mask, int rows, int cols,
                  const std::vector<RoiPoint>& points) {
  cv::Mat view(rows, cols, CV_8U, mask.data());  // draws straight into `mask`
  std::vector<cv::Point> vertices;
  vertices.reserve(points.size());
  const double scale = 1 << kFractionBits;
  for (const RoiPoint& point : points)
    vertices.emplace_back(static_cast<int>(std::lround(point.x * scale)),
                          static_cast<int>(std::lround(point.y * scale)));
  const std::vector<std::vector<cv::Point>> polygons{vertices};
  cv::fillPoly(view, polygons, cv::Scalar(1), cv::LINE_8, kFractionBits);
}

int count_regions(const std::vector<uint8_t>& mask, int rows, int cols) {
  cv::Mat binary(rows, cols, CV_8U);
  for (size_t i = 0; i < mask.size(); ++i) binary.data[i] = mask[i] != 0 ? 1 : 0;
  cv::Mat labels;
  return cv::connectedComponents(binary, labels, 8, CV_32S) - 1;  // label 0 is the background
}

}  // namespace hds::data::detail

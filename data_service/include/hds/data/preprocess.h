// Preprocessing of one film (docs/design.md §4): grey levels to 0..1, blank columns left and right
// of the breast cut away, resized to the training size. Normalisation with the training split's
// mean and std is a separate step, since the statistics need every training film first. Stateless
// free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/data/grey_image.h"

namespace hds::data {

struct PreprocessOptions {
  int rows = 1024;  // output size
  int cols = 512;
  float blank_threshold = 0.04f;  // a column whose maximum (0..1 scale) is at most this is blank
  // Keep only the breast: the bright regions other than the largest are set to 0 first.
  bool keep_largest_bright_region = false;
  float breast_threshold = 0.1f;  // "bright": above this on the 0..1 scale
};

// The options of data.image_rows, image_cols, blank_threshold, breast_region and
// breast_threshold. Throws DataError for a non-positive size.
PreprocessOptions preprocess_options_for(const hds::config::DataConfig& config);

// Half-open column range [begin, end) kept by the blank-column cut.
struct ColumnSpan {
  int begin = 0;
  int end = 0;
};

// The span from the first to the last non-blank column of `image`; all columns when every
// column is blank (an empty film is left for later checks rather than cut to nothing).
ColumnSpan non_blank_columns(const GreyImage& image, float blank_threshold);

// `image` with every bright region (8-connected pixels above `threshold` on the 0..1 scale) but the
// largest set to 0: a film label, marker or scanner strip goes, the breast stays. Darker pixels
// are left as they are. An image with no bright pixel is returned unchanged.
GreyImage keep_largest_bright_region(GreyImage image, float threshold);

// The columns preprocess_film keeps of `image`: the non-blank span after the largest bright region
// is kept (when the options say so).
ColumnSpan kept_columns(const GreyImage& image, const PreprocessOptions& options);

// Keeps the largest bright region when the options say so, cuts the blank columns, then resizes the
// image (cv::INTER_AREA when it shrinks in either direction, cv::INTER_LINEAR otherwise) and the
// mask (nearest neighbour, pixel-centre aligned). `mask` is rows x cols of the image; any non-zero
// value is a mass. The result holds 0..1 grey levels, not yet normalised. Throws DataError (naming
// `id`) for inconsistent sizes.
Film preprocess_film(const GreyImage& image, const std::vector<uint8_t>& mask,
                     const PreprocessOptions& options, std::string id, std::string patient);

// The inverse of preprocess_film's geometry for a map of the preprocessed film (rows x cols of
// the options): resized bilinearly back to the kept columns' size, placed at `span` in a map of
// `original_rows` x `original_cols` whose blank columns are 0. For showing a prediction on the
// film as it was read.
std::vector<float> restore_film_geometry(const std::vector<float>& map, int rows, int cols,
                                         ColumnSpan span, int original_rows, int original_cols);

// A preprocessed film not yet normalised, its 0..1 grey levels rounded to 0..max_level (255 or
// 65535): how `hds-data-service export --preprocessed` stores films at the training size.
GreyImage film_levels(const Film& film, int max_level);

// Mean and standard deviation of every pixel of `films` (as they are), accumulated in double.
PixelStatistics pixel_statistics(const std::vector<Film>& films);

// x -> (x - mean) / std for every pixel of every film.
void normalise_films(std::vector<Film>& films, double mean, double std);

}  // namespace hds::data

#include "hds/data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace hds::data {
namespace {

std::string size_text(int rows, int cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

void check_inputs(const GreyImage& image, const std::vector<uint8_t>& mask,
                  const PreprocessOptions& options, const std::string& id) {
  const size_t pixels = static_cast<size_t>(image.rows) * image.cols;
  if (image.rows <= 0 || image.cols <= 0 || image.pixels.size() != pixels || image.max_level <= 0)
    throw DataError(id + ": image of " + size_text(image.rows, image.cols) + " holds " +
                    std::to_string(image.pixels.size()) + " pixels (max level " +
                    std::to_string(image.max_level) + ")");
  if (mask.size() != pixels)
    throw DataError(id + ": mask holds " + std::to_string(mask.size()) + " pixels; the image is " +
                    size_text(image.rows, image.cols));
  if (options.rows <= 0 || options.cols <= 0)
    throw DataError(id + ": cannot resize to " + size_text(options.rows, options.cols));
}

// The kept columns as 0..1 floats, rows x span width.
cv::Mat crop_to_unit_scale(const GreyImage& image, ColumnSpan span) {
  cv::Mat grey(image.rows, span.end - span.begin, CV_32F);
  const float scale = 1.0f / static_cast<float>(image.max_level);
  for (int r = 0; r < image.rows; ++r) {
    const uint16_t* source = image.pixels.data() + static_cast<size_t>(r) * image.cols;
    float* target = grey.ptr<float>(r);
    for (int c = span.begin; c < span.end; ++c) target[c - span.begin] = source[c] * scale;
  }
  return grey;
}

// The kept columns of the mask as 0/1.
cv::Mat crop_mask(const std::vector<uint8_t>& mask, int rows, int cols, ColumnSpan span) {
  cv::Mat binary(rows, span.end - span.begin, CV_8U);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* source = mask.data() + static_cast<size_t>(r) * cols;
    uint8_t* target = binary.ptr<uint8_t>(r);
    for (int c = span.begin; c < span.end; ++c) target[c - span.begin] = source[c] != 0 ? 1 : 0;
  }
  return binary;
}

// Area averaging avoids aliasing when shrinking; bilinear is smoother when only enlarging.
int image_interpolation(cv::Size from, cv::Size to) {
  return (to.width < from.width || to.height < from.height) ? cv::INTER_AREA : cv::INTER_LINEAR;
}

cv::Mat resize_to(const cv::Mat& source, cv::Size size, int interpolation) {
  if (source.size() == size) return source;
  cv::Mat resized;
  cv::resize(source, resized, size, 0, 0, interpolation);
  return resized;
}

// The film as preprocessing reads it: `image` itself, or its breast alone (kept in `storage`).
const GreyImage& film_to_read(const GreyImage& image, const PreprocessOptions& options,
                              GreyImage& storage) {
  if (!options.keep_largest_bright_region) return image;
  storage = keep_largest_bright_region(image, options.breast_threshold);
  return storage;
}

}  // namespace

PreprocessOptions preprocess_options_for(const hds::config::DataConfig& config) {
  if (config.image_rows() <= 0 || config.image_cols() <= 0)
    throw DataError("data.image_rows x data.image_cols = " + std::to_string(config.image_rows()) +
                    "x" + std::to_string(config.image_cols()) + ": both must be positive");
  PreprocessOptions options;
  options.rows = config.image_rows();
  options.cols = config.image_cols();
  options.blank_threshold = config.blank_threshold();
  options.keep_largest_bright_region =
      config.breast_region() == hds::config::DataConfig::LARGEST_COMPONENT;
  options.breast_threshold = config.breast_threshold();
  return options;
}

GreyImage keep_largest_bright_region(GreyImage image, float threshold) {
  const double level = threshold * static_cast<double>(image.max_level);
  cv::Mat bright(image.rows, image.cols, CV_8U);
  for (size_t i = 0; i < image.pixels.size(); ++i) bright.data[i] = image.pixels[i] > level ? 1 : 0;
  cv::Mat labels, stats, centroids;
  const int count = cv::connectedComponentsWithStats(bright, labels, stats, centroids, 8, CV_32S);
  if (count <= 2) return image;  // the background alone, or one bright region
  int largest = 1;
  for (int label = 2; label < count; ++label)
    if (stats.at<int>(label, cv::CC_STAT_AREA) > stats.at<int>(largest, cv::CC_STAT_AREA))
      largest = label;
  const int* label_of = labels.ptr<int>(0);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    if (label_of[i] != 0 && label_of[i] != largest) image.pixels[i] = 0;
  return image;
}

ColumnSpan non_blank_columns(const GreyImage& image, float blank_threshold) {
  std::vector<uint16_t> column_max(image.cols, 0);
  for (int r = 0; r < image.rows; ++r) {
    const uint16_t* row = image.pixels.data() + static_cast<size_t>(r) * image.cols;
    for (int c = 0; c < image.cols; ++c) column_max[c] = std::max(column_max[c], row[c]);
  }
  auto is_blank = [&](int c) {
    return column_max[c] / static_cast<double>(image.max_level) <= blank_threshold;
  };
  ColumnSpan span{0, image.cols};
  while (span.begin < image.cols && is_blank(span.begin)) ++span.begin;
  if (span.begin == image.cols) return ColumnSpan{0, image.cols};
  while (is_blank(span.end - 1)) --span.end;
  return span;
}

ColumnSpan kept_columns(const GreyImage& image, const PreprocessOptions& options) {
  GreyImage storage;
  return non_blank_columns(film_to_read(image, options, storage), options.blank_threshold);
}

Film preprocess_film(const GreyImage& image, const std::vector<uint8_t>& mask,
                     const PreprocessOptions& options, std::string id, std::string patient) {
  check_inputs(image, mask, options, id);
  GreyImage storage;
  const GreyImage& film_image = film_to_read(image, options, storage);
  const ColumnSpan span = non_blank_columns(film_image, options.blank_threshold);
  const cv::Mat grey = crop_to_unit_scale(film_image, span);
  const cv::Mat binary = crop_mask(mask, image.rows, image.cols, span);

  const cv::Size target(options.cols, options.rows);
  // INTER_NEAREST_EXACT samples at pixel centres like the image's resize; plain INTER_NEAREST
  // would shift the mask by up to half a source pixel against the image.
  const cv::Mat grey_resized = resize_to(grey, target, image_interpolation(grey.size(), target));
  const cv::Mat mask_resized = resize_to(binary, target, cv::INTER_NEAREST_EXACT);

  Film film;
  film.id = std::move(id);
  film.patient = std::move(patient);
  film.rows = options.rows;
  film.cols = options.cols;
  film.image.resize(static_cast<size_t>(film.rows) * film.cols);
  film.mask.resize(film.image.size());
  for (int r = 0; r < film.rows; ++r) {
    const size_t offset = static_cast<size_t>(r) * film.cols;
    std::copy_n(grey_resized.ptr<float>(r), film.cols, film.image.begin() + offset);
    std::copy_n(mask_resized.ptr<uint8_t>(r), film.cols, film.mask.begin() + offset);
  }
  return film;
}

std::vector<float> restore_film_geometry(const std::vector<float>& map, int rows, int cols,
                                         ColumnSpan span, int original_rows, int original_cols) {
  if (map.size() != static_cast<size_t>(rows) * static_cast<size_t>(cols) || span.begin < 0 ||
      span.end > original_cols || span.begin >= span.end || original_rows <= 0) {
    throw DataError("restore_film_geometry: a " + size_text(rows, cols) + " map of " +
                    std::to_string(map.size()) + " values cannot go back to columns [" +
                    std::to_string(span.begin) + ", " + std::to_string(span.end) + ") of " +
                    size_text(original_rows, original_cols));
  }
  const cv::Mat source(rows, cols, CV_32F, const_cast<float*>(map.data()));
  const cv::Mat kept =
      resize_to(source, cv::Size(span.end - span.begin, original_rows), cv::INTER_LINEAR);
  std::vector<float> restored(static_cast<size_t>(original_rows) * original_cols, 0.f);
  for (int r = 0; r < original_rows; ++r) {
    std::copy_n(kept.ptr<float>(r), span.end - span.begin,
                restored.begin() + static_cast<size_t>(r) * original_cols + span.begin);
  }
  return restored;
}

GreyImage film_levels(const Film& film, int max_level) {
  GreyImage image;
  image.rows = film.rows;
  image.cols = film.cols;
  image.max_level = max_level;
  image.pixels.resize(film.image.size());
  std::transform(film.image.begin(), film.image.end(), image.pixels.begin(), [max_level](float x) {
    return static_cast<uint16_t>(std::lround(std::clamp(x, 0.f, 1.f) * max_level));
  });
  return image;
}

PixelStatistics pixel_statistics(const std::vector<Film>& films) {
  double sum = 0;
  size_t count = 0;
  for (const Film& film : films) {
    for (float x : film.image) sum += x;
    count += film.image.size();
  }
  if (count == 0) return {};
  PixelStatistics statistics;
  statistics.mean = sum / static_cast<double>(count);
  double squares = 0;  // second pass: no cancellation from subtracting large sums
  for (const Film& film : films)
    for (float x : film.image) squares += (x - statistics.mean) * (x - statistics.mean);
  statistics.std = std::sqrt(squares / static_cast<double>(count));
  return statistics;
}

void normalise_films(std::vector<Film>& films, double mean, double std) {
  const double inverse_std = 1.0 / std;
  for (Film& film : films)
    for (float& x : film.image) x = static_cast<float>((x - mean) * inverse_std);
}

}  // namespace hds::data

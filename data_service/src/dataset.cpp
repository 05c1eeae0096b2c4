#include "hds/data/dataset.h"

#include <algorithm>
#include <cmath>

#include "film_readers.h"
#include "hds/data/preprocess.h"

namespace hds::data {
namespace {

PreprocessOptions preprocess_options(const hds::config::DataConfig& config) {
  if (config.image_rows() <= 0 || config.image_cols() <= 0)
    throw DataError("data.image_rows x data.image_cols = " + std::to_string(config.image_rows()) +
                    "x" + std::to_string(config.image_cols()) + ": both must be positive");
  PreprocessOptions options;
  options.rows = config.image_rows();
  options.cols = config.image_cols();
  options.blank_threshold = config.blank_threshold();
  return options;
}

Dataset read_source(const hds::config::DataConfig& config, const PreprocessOptions& options) {
  if (config.source() == "phantom") return detail::read_phantom_films(config.phantom(), options);
  if (config.source() == "folder") return detail::read_folder_films(config.root(), options);
  throw DataError("data.source = \"" + config.source() +
                  "\": unknown source; this build reads \"phantom\" and \"folder\"");
}

// The configured statistics when either is set, else the training split's own.
PixelStatistics normalisation(const hds::config::DataConfig& config,
                              const std::vector<Film>& train) {
  if (config.mean() != 0 || config.std() != 0) {
    if (!(config.std() > 0) || !std::isfinite(config.std()) || !std::isfinite(config.mean()))
      throw DataError("data.mean = " + std::to_string(config.mean()) +
                      ", data.std = " + std::to_string(config.std()) +
                      ": std must be positive and finite (set both to 0 to compute them from the "
                      "training split)");
    return {config.mean(), config.std()};
  }
  const PixelStatistics statistics = pixel_statistics(train);
  if (!(statistics.std > 0))
    throw DataError("training split: every pixel has the same grey level (" +
                    std::to_string(statistics.mean) + "); cannot normalise");
  return statistics;
}

}  // namespace

bool Film::has_mass() const {
  return std::any_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
}

Dataset load_dataset(const hds::config::DataConfig& config) {
  Dataset dataset = read_source(config, preprocess_options(config));
  if (dataset.train.empty())
    throw DataError("data.source = \"" + config.source() + "\": the training split is empty");
  const PixelStatistics statistics = normalisation(config, dataset.train);
  dataset.mean = statistics.mean;
  dataset.std = statistics.std;
  for (std::vector<Film>* split : {&dataset.train, &dataset.val, &dataset.test})
    normalise_films(*split, dataset.mean, dataset.std);
  return dataset;
}

}  // namespace hds::data

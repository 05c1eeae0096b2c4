// The "phantom" source: films made in memory by make_phantom, then preprocessed like files.
#include "film_readers.h"
#include "hds/data/phantom.h"
#include "parallel_for.h"

namespace hds::data::detail {
namespace {

void check_count(const char* field, int count, int minimum) {
  if (count < minimum)
    throw DataError(std::string("data.phantom.") + field + " = " + std::to_string(count) +
                    ": must be at least " + std::to_string(minimum));
}

GreyImage to_grey_image(const PhantomFilm& phantom) {
  GreyImage image;
  image.rows = phantom.rows;
  image.cols = phantom.cols;
  image.max_level = 255;
  image.pixels.assign(phantom.image.begin(), phantom.image.end());
  return image;
}

}  // namespace

Dataset read_phantom_films(const hds::config::PhantomConfig& config,
                           const PreprocessOptions& options) {
  check_count("train_count", config.train_count(), 1);
  check_count("val_count", config.val_count(), 0);
  check_count("test_count", config.test_count(), 0);
  const int train = config.train_count(), val = config.val_count(), test = config.test_count();
  if (options.rows < kPhantomMinSide || options.cols < kPhantomMinSide)
    throw DataError("data.image_rows x data.image_cols = " + std::to_string(options.rows) + "x" +
                    std::to_string(options.cols) + ": phantoms need at least " +
                    std::to_string(kPhantomMinSide) + " on each side");

  // One slot per film, filled in parallel: film i of the whole family goes to slot i.
  std::vector<Film> films(static_cast<size_t>(train) + val + test);
  parallel_for(films.size(), [&](size_t index) {
    const PhantomFilm phantom =
        make_phantom(config.seed(), static_cast<int>(index), options.rows, options.cols);
    const std::string id = phantom_id(static_cast<int>(index));
    films[index] = preprocess_film(to_grey_image(phantom), phantom.mask, options, id, id);
  });

  Dataset dataset;
  auto take = [&](int begin, int count) {
    return std::vector<Film>(std::make_move_iterator(films.begin() + begin),
                             std::make_move_iterator(films.begin() + begin + count));
  };
  dataset.train = take(0, train);
  dataset.val = take(train, val);
  dataset.test = take(train + val, test);
  return dataset;
}

}  // namespace hds::data::detail

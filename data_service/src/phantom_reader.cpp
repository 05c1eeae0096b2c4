// The "phantom" source: films made in memory by make_phantom at the training size, then
// preprocessed like files.
#include <map>

#include "film_readers.h"
#include "hds/config/config.h"
#include "hds/data/phantom.h"

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

class PhantomReader final : public FilmReader {
 public:
  explicit PhantomReader(const hds::config::DataConfig& config)
      : seed_(config.phantom().seed()),
        mass_free_share_(config.phantom().mass_free_share()),
        rows_(config.image_rows()),
        cols_(config.image_cols()) {
    const hds::config::PhantomConfig& phantom = config.phantom();
    check_count("train_count", phantom.train_count(), 1);
    check_count("val_count", phantom.val_count(), 0);
    check_count("test_count", phantom.test_count(), 0);
    if (rows_ < kPhantomMinSide || cols_ < kPhantomMinSide)
      throw DataError("data.image_rows x data.image_cols = " + std::to_string(rows_) + "x" +
                      std::to_string(cols_) + ": phantoms need at least " +
                      std::to_string(kPhantomMinSide) + " on each side");
    // Film i of the whole family: train first, then val, then test; or all of them pooled for
    // the dataset to divide into folds.
    const bool pooled = hds::config::divides_into_folds(config);
    int index = 0;
    for (auto [split, count] : {std::pair{&films_.train, phantom.train_count()},
                                std::pair{&films_.val, phantom.val_count()},
                                std::pair{&films_.test, phantom.test_count()}}) {
      if (pooled) split = &films_.train;
      for (int k = 0; k < count; ++k, ++index) {
        split->push_back(phantom_id(index));
        index_of_.emplace(split->back(), index);
      }
    }
  }

  const FilmList& films() const override { return films_; }

  RawFilm read_film(const std::string& id) const override {
    const auto found = index_of_.find(id);
    if (found == index_of_.end()) throw DataError("phantom source: no film '" + id + "'");
    const PhantomFilm phantom = make_phantom(seed_, found->second, rows_, cols_, mass_free_share_);
    RawFilm film;
    film.id = id;
    film.patient = id;
    film.image = to_grey_image(phantom);
    film.mask = phantom.mask;
    film.mass_count = phantom.mass_count;
    return film;
  }

 private:
  uint64_t seed_;
  double mass_free_share_;
  int rows_;
  int cols_;
  FilmList films_;
  std::map<std::string, int> index_of_;
};

}  // namespace

std::unique_ptr<FilmReader> make_phantom_reader(const hds::config::DataConfig& config) {
  return std::make_unique<PhantomReader>(config);
}

}  // namespace hds::data::detail

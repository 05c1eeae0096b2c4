#include "hds/data/film_reader.h"

#include "film_readers.h"

namespace hds::data {
namespace {

std::string need_root(const hds::config::DataConfig& config) {
  if (config.root().empty())
    throw DataError("data.root is empty; the " + config.source() +
                    " source needs the dataset's folder");
  return config.root();
}

}  // namespace

std::unique_ptr<FilmReader> make_film_reader(const hds::config::DataConfig& config) {
  const std::string& source = config.source();
  if (source == "phantom") return detail::make_phantom_reader(config);
  const uint64_t max_pixels = config.max_film_pixels();
  if (source == "folder") return detail::make_folder_reader(need_root(config), max_pixels);
  if (source == "mini-mias") {
    return detail::make_mini_mias_reader(need_root(config), config.mias_other_abnormalities(),
                                         max_pixels);
  }
  if (source == "inbreast") return detail::make_inbreast_reader(need_root(config), max_pixels);
  throw DataError("data.source = \"" + source +
                  "\": unknown source; this build reads \"phantom\", \"folder\", \"mini-mias\" "
                  "and \"inbreast\"");
}

}  // namespace hds::data

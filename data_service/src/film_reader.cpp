#include "hds/data/film_reader.h"

#include "film_readers.h"
#include "hds/config/config.h"

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
  const hds::config::DataSource* source = hds::config::find_data_source(config.source());
  if (source == nullptr) {
    throw DataError("data.source = \"" + config.source() + "\": unknown source; this build reads " +
                    hds::config::data_source_names());
  }
  const uint64_t max_pixels = config.max_film_pixels();
  switch (source->kind) {
    case hds::config::DataSourceKind::phantom:
      return detail::make_phantom_reader(config);
    case hds::config::DataSourceKind::folder:
      return detail::make_folder_reader(need_root(config), max_pixels);
    case hds::config::DataSourceKind::mini_mias:
      return detail::make_mini_mias_reader(need_root(config), config.mias_other_abnormalities(),
                                           max_pixels);
    case hds::config::DataSourceKind::inbreast:
      return detail::make_inbreast_reader(need_root(config), max_pixels);
  }
  throw DataError("data.source = \"" + config.source() + "\": no reader");  // unreachable
}

}  // namespace hds::data

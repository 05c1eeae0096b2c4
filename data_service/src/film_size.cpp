#include "hds/data/film_size.h"

#include "config.pb.h"
#include "hds/data/dataset.h"

namespace hds::data {

uint64_t default_max_film_pixels() {
  return hds::config::DataConfig::default_instance().max_film_pixels();
}

void check_film_pixels(const std::string& path, const std::string& kind, uint64_t rows,
                       uint64_t cols, uint64_t max_pixels) {
  // Each side at most the budget, so the product of two sides that pass cannot overflow.
  if (rows <= max_pixels && cols <= max_pixels && rows * cols <= max_pixels) return;
  const std::string pixels =
      rows <= UINT32_MAX && cols <= UINT32_MAX ? " = " + std::to_string(rows * cols) : "";
  throw DataError(path + ": " + kind + " declares " + std::to_string(rows) + " x " +
                  std::to_string(cols) + pixels + " pixels, above data.max_film_pixels (" +
                  std::to_string(max_pixels) + "): refused before decoding");
}

}  // namespace hds::data

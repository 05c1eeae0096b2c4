// The pixel budget of one film (data.max_film_pixels): every reader checks a file's declared size
// against it from the header, before any pixel is decoded, so a small file that declares
// gigapixels costs nothing. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace hds::data {

// data.max_film_pixels's default, read from the configuration's definition (written once there).
uint64_t default_max_film_pixels();

// Throws DataError "<path>: <kind> declares R x C = N pixels, above data.max_film_pixels (M):
// refused before decoding" when rows x cols exceeds max_pixels.
void check_film_pixels(const std::string& path, const std::string& kind, uint64_t rows,
                       uint64_t cols, uint64_t max_pixels);

}  // namespace hds::data

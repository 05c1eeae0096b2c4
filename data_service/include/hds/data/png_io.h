// PNG files through libpng: grey films in and out, colour overlays out. Stateless free functions;
// thread-safe (each call owns its libpng state). Errors are DataError naming the file, e.g.
//   "data/img/17.png: PNG is 8-bit RGB; expected a grey image".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hds/data/film_size.h"
#include "hds/data/grey_image.h"

namespace hds::data {

// Reads a greyscale PNG of bit depth 1, 2, 4, 8 (max_level 255; low depths are scaled up) or 16
// (max_level 65535). Colour, palette and alpha images are rejected: silently converting them would
// hide a wrong input file. A PNG declaring more than `max_pixels` is refused from its header
// (film_size.h).
GreyImage read_grey_png(const std::string& path, uint64_t max_pixels = default_max_film_pixels());

// The same for a PNG held in memory; `name` stands for the file in errors.
GreyImage decode_grey_png(const std::string& bytes, const std::string& name,
                          uint64_t max_pixels = default_max_film_pixels());

// Writes `pixels` (rows x cols, row-major) as an 8-bit grey PNG, replacing any existing file.
void write_grey_png(const std::string& path, int rows, int cols,
                    const std::vector<uint8_t>& pixels);

// Writes `image` as a grey PNG, replacing any existing file: 8-bit when its max_level is 255, else
// 16-bit with the levels scaled to 0..65535, so that read_grey_png gives back the same grey levels
// on the 0..1 scale (to 1/65535).
void write_grey_png(const std::string& path, const GreyImage& image);

// Writes `rgb` (rows x cols x 3: red, green, blue, row-major) as an 8-bit colour PNG (overlays).
void write_rgb_png(const std::string& path, int rows, int cols, const std::vector<uint8_t>& rgb);

}  // namespace hds::data

// Binary PGM (netpbm "P5") reading, for the original mini-MIAS films. Stateless free functions;
// thread-safe. Errors are DataError naming the file, e.g.
//   "images/mdb001.pgm: truncated PGM: 1000 of 1048576 pixel bytes".
#pragma once

#include <cstdint>
#include <string>

#include "hds/data/film_size.h"
#include "hds/data/grey_image.h"

namespace hds::data {

// Decodes the first image of a binary PGM held in `bytes` (named `name` in errors). The header is
// "P5", width, height and maxval (1..65535) separated by whitespace, '#' comments allowed between
// them, then one whitespace byte and the pixels: one byte each for maxval <= 255, else two bytes
// big-endian. max_level of the result is maxval. Anything after the first image is ignored (netpbm
// files may hold several images). A header declaring more than `max_pixels` is refused
// (film_size.h).
GreyImage decode_pgm(const std::string& bytes, const std::string& name,
                     uint64_t max_pixels = default_max_film_pixels());

// Reads the file at `path` and decodes it as decode_pgm does.
GreyImage read_pgm(const std::string& path, uint64_t max_pixels = default_max_film_pixels());

}  // namespace hds::data

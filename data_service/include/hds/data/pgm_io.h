// Binary PGM (netpbm "P5") reading, for the original mini-MIAS films. Stateless free functions;
// thread-safe. Errors are DataError naming the file, e.g.
//   "images/mdb001.pgm: truncated PGM: 1000 of 1048576 pixel bytes".
#pragma once

#include <string>

#include "hds/data/grey_image.h"

namespace hds::data {

// Decodes the first image of a binary PGM held in `bytes` (named `name` in errors). The header is
// "P5", width, height and maxval (1..65535) separated by whitespace, '#' comments allowed between
// them, then one whitespace byte and the pixels: one byte each for maxval <= 255, else two bytes
// big-endian. max_level of the result is maxval. Anything after the first image is ignored (netpbm
// files may hold several images).
GreyImage decode_pgm(const std::string& bytes, const std::string& name);

// Reads the file at `path` and decodes it as decode_pgm does.
GreyImage read_pgm(const std::string& path);

}  // namespace hds::data

// Synthetic mammograms: a breast outline on a dark background, tissue texture and 0-3 masses
// (circumscribed or spiculated) with their masks. Deterministic: the same (seed, index, size)
// always gives the same pixels. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hds::data {

struct PhantomFilm {
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> image;  // 8-bit grey, row-major
  std::vector<uint8_t> mask;   // 1 = mass
  int mass_count = 0;
};

// Film `index` of the phantom family `seed`, `rows` x `cols` (each at least 64).
PhantomFilm make_phantom(uint64_t seed, int index, int rows, int cols);

// Writes `count` films in the folder layout (img/<id>.png, label/<id>.png with 0/1 values,
// split/{train,val,test}.txt in proportions 3:1:1). Throws DataError when a file cannot be
// written (the message names it).
void write_phantom_folder(const std::string& out_dir, int count, uint64_t seed, int rows, int cols);

}  // namespace hds::data

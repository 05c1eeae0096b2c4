// Synthetic mammograms: a breast outline on a dark background, tissue texture and, on a set share
// of films, 1-3 masses (circumscribed or spiculated) with their masks. Deterministic: the same
// (seed, index, size) always gives the same pixels. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hds::data {

// The smallest film side make_phantom accepts.
constexpr int kPhantomMinSide = 64;

struct PhantomFilm {
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> image;  // 8-bit grey, row-major
  std::vector<uint8_t> mask;   // 1 = mass
  int mass_count = 0;
};

// Film `index` (>= 0) of the phantom family `seed`, `rows` x `cols` (each at least 64; throws
// std::invalid_argument otherwise, or for a share outside [0, 1]). The breast sits on the left
// edge for even indices and on the right edge for odd ones. A share `mass_free_share` of the
// family's films has no mass, spread evenly: any n consecutive films hold n * (1 - share) films
// with masses within about one (data.phantom.mass_free_share, INbreast's 0.739 by default). The
// others hold 1 mass (three in four) or 2-3, each with radius 3-8% of `cols`.
PhantomFilm make_phantom(uint64_t seed, int index, int rows, int cols, double mass_free_share);

// "phantom-0007": the id of film `index` in a phantom folder.
std::string phantom_id(int index);

// The split of film `index` in a phantom folder: "train" for index % 5 in {0, 1, 2}, "val" for 3,
// "test" for 4 (3:1:1, rotating).
const char* phantom_split(int index);

// Writes `count` films in the folder layout (img/<id>.png, label/<id>.png with 0/1 values,
// split/{train,val,test}.txt in proportions 3:1:1, see phantom_split), creating the folders.
// Throws DataError when a file or folder cannot be written (the message names it).
void write_phantom_folder(const std::string& out_dir, int count, uint64_t seed, int rows, int cols,
                          double mass_free_share);

}  // namespace hds::data

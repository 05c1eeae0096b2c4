// The dataset sources behind load_dataset, one interface for all (docs/design.md §4):
//   folder     the reference code's img/ + label/ PNG pairs with split/{train,val,test}.txt
//   phantom    built-in synthetic mammograms
//   mini-mias  Info.txt with mdbNNN.png / mdbNNN.pgm; masses drawn as filled circles
//   inbreast   AllDICOMs/*.dcm with AllXML/<id>.xml OsiriX ROIs; masses drawn as filled polygons
// A reader lists its films once, when it is made, and then reads any film on request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/data/grey_image.h"

namespace hds::data {

// A film as its source stores it, before preprocessing.
struct RawFilm {
  std::string id;
  std::string patient;
  GreyImage image;
  std::vector<uint8_t> mask;  // image.rows x image.cols, row-major; 1 = mass pixel, 0 = not
  int mass_count = 0;         // masses drawn into the mask
};

// The films of a source by split, and what listing them found (masses or films that had to be
// left out). Sources without split lists of their own (mini-mias, inbreast) put every film in
// train; folds by patient divide them later.
struct FilmList {
  std::vector<std::string> train;
  std::vector<std::string> val;
  std::vector<std::string> test;
  LoadReport report;
  // Sources without split lists of their own (hds::config::divides_into_folds) list every film
  // in `train`; load_dataset divides them into patient folds (data.folds).
};

// One dataset source. Immutable once made; read_film is thread-safe.
class FilmReader {
 public:
  virtual ~FilmReader() = default;
  // Every film the source holds, listed when the reader was made.
  virtual const FilmList& films() const = 0;
  // Reads film `id` (one of films()) and draws its mask. Throws DataError naming the file and the
  // problem: such a film is a "bad sample" (data.on_bad_sample decides what happens to it).
  virtual RawFilm read_film(const std::string& id) const = 0;
  // The files whose bytes decide read_film(id), for the preprocessing cache's key; none for
  // films made in memory (not worth caching).
  virtual std::vector<std::string> source_files(const std::string& /*id*/) const { return {}; }
};

// The reader of config.source, its index read (split lists, Info.txt, the DICOM folder). Throws
// DataError naming the file or field when the index itself is unusable: that is never a single
// bad sample, so it stops loading whatever data.on_bad_sample says.
std::unique_ptr<FilmReader> make_film_reader(const hds::config::DataConfig& config);

}  // namespace hds::data

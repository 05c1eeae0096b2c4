// Datasets: films read from a source, preprocessed once (blank columns cut, resized, normalised)
// and split into train / validation / test. Plain C++ (no LibTorch). Load functions are
// thread-safe; a Dataset is immutable after loading.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::data {

// A problem with input data. what() names the file (or sample) and the problem, e.g.
// "data/img/17.png: PNG is 3-channel RGB; expected a grey image".
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One preprocessed mammogram: rows x cols, row-major.
struct Film {
  std::string id;
  std::string patient;
  int rows = 0;
  int cols = 0;
  std::vector<float> image;   // normalised grey levels: (x - mean) / std, x on the 0..1 scale
  std::vector<uint8_t> mask;  // 1 = mass pixel, 0 = not
  int mass_count = 0;         // masses the source annotates on this film (drawn into the mask)
  bool has_mass() const;
};

// The grey-level statistics films are normalised with.
struct PixelStatistics {
  double mean = 0;
  double std = 0;  // population standard deviation
};

// What loading left out. Each warning is also printed on stderr as it is found.
struct LoadReport {
  // Films listed by the source but left out: bad samples under data.on_bad_sample SKIP, and films
  // whose annotation cannot give a correct label (a mini-MIAS film whose only mass has no
  // coordinates).
  int skipped_films = 0;
  // Annotated masses that could not be drawn (mini-MIAS rows without coordinates).
  int skipped_masses = 0;
  // One line per skipped film or mass, naming it and the reason, in a fixed order.
  std::vector<std::string> warnings;
};

struct Dataset {
  std::vector<Film> train;
  std::vector<Film> val;
  std::vector<Film> test;
  double mean = 0;  // of the training split's preprocessed pixels (0..1 scale), or the override
  double std = 1;
  LoadReport report;
  // Patient folds, when the source has no split lists of its own (else folds == 0).
  int folds = 0;
  int fold = 0;                          // the rotation in use
  std::map<std::string, int> film_fold;  // film id -> fold, every film of every split
  std::string split_file;
  // The preprocessing cache ("" when off) and how it served this load.
  std::string cache_dir;
  int cache_hits = 0;
  int cache_misses = 0;
};

// Reads config.source ("phantom", "folder", "mini-mias" or "inbreast"; see film_reader.h),
// preprocesses every film to image_rows x image_cols (through the on-disk cache, film_cache.h)
// and normalises with the training split's mean and std (or the configured override). Sources
// without split lists of their own are divided into patient folds (folds.h), rotation data.fold,
// recorded in the split file. A bad film throws DataError naming the file and the problem, or, with
// data.on_bad_sample SKIP, is left out and recorded in Dataset::report. An empty training split is
// an error.
//
// `selection` leaves splits out: they stay empty and none of their films is decoded (a trainer
// rank fed by a data service needs the validation films at most). Without the training split the
// normalisation must be given (the service's). A source divided into folds is then dealt by its
// existing split file; while there is none (or it lacks a listed film), every film is decoded to
// deal them, as a full load does, and the splits left out are dropped.
struct SplitSelection {
  bool train = true;
  bool val = true;
  bool test = true;
  std::optional<PixelStatistics> normalisation;  // used when given; required without train
};
Dataset load_dataset(const hds::config::DataConfig& config, const SplitSelection& selection = {});

// Films load_dataset decodes at once: one a core, but no more than fit in half of
// `available_bytes` when each takes its worst case, kDecodeBytesPerPixel x max_film_pixels (the
// decoded levels, the 0..1 film, preprocessing's working copies). At least 1.
constexpr uint64_t kDecodeBytesPerPixel = 12;
unsigned films_decoded_at_once(uint64_t available_bytes, uint64_t max_film_pixels, unsigned cores);

// A loaded film keeps a float and a mask byte a pixel at image_rows x image_cols.
constexpr uint64_t kLoadedBytesPerPixel = 5;
// Throws DataError naming `what` (the field or count to change), the size asked for and
// `available_bytes` when `films` loaded films would not fit in it: checked before loading, so that
// an absurd count ends with its name, not with std::bad_alloc after minutes of work.
void check_dataset_fits_in_memory(uint64_t films, const hds::config::DataConfig& config,
                                  uint64_t available_bytes, const std::string& what);

}  // namespace hds::data

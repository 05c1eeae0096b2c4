// Datasets: films read from a source, preprocessed once (blank columns cut, resized, normalised)
// and split into train / validation / test. Plain C++ (no LibTorch). Load functions are
// thread-safe; a Dataset is immutable after loading.
#pragma once

#include <cstdint>
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
  bool has_mass() const;
};

struct Dataset {
  std::vector<Film> train;
  std::vector<Film> val;
  std::vector<Film> test;
  double mean = 0;  // of the training split's preprocessed pixels (0..1 scale), or the override
  double std = 1;
};

// Reads config.source ("phantom" or "folder"), preprocesses every film to
// image_rows x image_cols and normalises with the training split's mean and std (or the
// configured override). Throws DataError naming the file and the problem; an empty training
// split is an error.
Dataset load_dataset(const hds::config::DataConfig& config);

}  // namespace hds::data

// The dataset sources behind load_dataset. Each returns its splits preprocessed to 0..1 grey levels
// but not yet normalised (mean and std are left at their defaults); load_dataset normalises.
#pragma once

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/data/preprocess.h"

namespace hds::data::detail {

// Built-in phantoms: train, val and test films are make_phantom indices 0.., then continuing.
Dataset read_phantom_films(const hds::config::PhantomConfig& config,
                           const PreprocessOptions& options);

// The reference code's layout under `root`: img/<id>.png, label/<id>.png,
// split/{train,val,test}.txt.
Dataset read_folder_films(const std::string& root, const PreprocessOptions& options);

}  // namespace hds::data::detail

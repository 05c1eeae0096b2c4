// The FilmReader backends behind make_film_reader, one per data.source.
#pragma once

#include <memory>
#include <string>

#include "config.pb.h"
#include "hds/data/film_reader.h"

namespace hds::data::detail {

// Built-in phantoms made at data.image_rows x data.image_cols: train, val and test films are
// make_phantom indices 0.., then continuing (all of them in train when
// data.phantom.divide_into_folds, for load_dataset to divide into folds).
std::unique_ptr<FilmReader> make_phantom_reader(const hds::config::DataConfig& config);

// The reference code's layout under `root`: img/<id>.png, label/<id>.png,
// split/{train,val,test}.txt. The file readers refuse films of more than `max_pixels`
// (data.max_film_pixels) from their headers.
std::unique_ptr<FilmReader> make_folder_reader(const std::string& root, uint64_t max_pixels);

// mini-MIAS under `root` (hds/data/mini_mias.h).
std::unique_ptr<FilmReader> make_mini_mias_reader(
    const std::string& root, hds::config::DataConfig::MiasOtherAbnormalities other_abnormalities,
    uint64_t max_pixels);

// INbreast under `root` (hds/data/inbreast.h).
std::unique_ptr<FilmReader> make_inbreast_reader(const std::string& root, uint64_t max_pixels);

}  // namespace hds::data::detail

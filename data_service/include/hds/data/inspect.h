// `hds-data-service inspect`: what a configuration's dataset holds — films, patients, masses,
// normalisation, cache use and per-fold counts — as text lines "name: value" that people read and
// tests parse. Thread-safe.
#pragma once

#include <string>

#include "hds/data/dataset.h"

namespace hds::data {

std::string describe_dataset(const Dataset& dataset, const hds::config::DataConfig& config);

}  // namespace hds::data

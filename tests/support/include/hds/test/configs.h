// Configurations for tests.
#pragma once

#include <string>
#include <vector>

#include "hds/config/config.h"

namespace hds::test {

// A model small enough that a training step takes milliseconds on CPU, on 256x128 phantom films
// with 128x128 patches. Dropout stays on (as in the paper). No metrics export (tests run side by
// side; one that wants metrics sets monitoring.metrics_port to a free port).
inline hds::config::Config tiny_config(const std::string& output_dir,
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = {
      "model.widths=[4,4,8,8,8,8,8,8,8,4,4]",
      "model.blocks_per_stage=1",
      "data.source=phantom",
      "data.image_rows=256",
      "data.image_cols=128",
      "data.patch_rows=128",
      "data.patch_cols=128",
      "data.phantom={train_count: 8 val_count: 3 test_count: 0 seed: 7}",
      "train.batch_size=4",
      "train.epochs=6",
      "train.validate_every=2",
      "train.validate_from=2",
      "train.checkpoint_every=2",
      "train.log_every_steps=1000",
      "train.threads=1",
      "train.output_dir=" + output_dir,
      "monitoring.metrics_port=0",
  };
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return hds::config::parse_config("", "<tiny test config>", overrides);
}

}  // namespace hds::test

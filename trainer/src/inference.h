// What `eval` and `infer` share: a checkpoint's model ready to run on films (its configuration,
// weights, training normalisation and device), and what a head's probabilities become at the
// operating threshold (hds::scoring::kOperatingThreshold): a mask and its overlay picture.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/trainer/evaluation.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

// The pixel statistics a model was trained with: films it runs on are normalised with them.
using Normalisation = hds::data::PixelStatistics;

class TrainedModel {
 public:
  // Reads `checkpoint`, a checkpoint folder or a model bundle (bundle.h): its configuration with
  // `overrides`, its weights, its normalisation, onto `device` ("" = the configuration's
  // train.device). Throws CheckpointError.
  TrainedModel(const std::string& checkpoint, const std::vector<std::string>& overrides,
               const std::string& device = "");

  // The configuration the model was trained with (overrides applied).
  const hds::config::Config& config() const { return config_; }
  // Absent in checkpoints written before it was recorded.
  const std::optional<Normalisation>& normalisation() const { return normalisation_; }
  // Which weights these are, for reports: "<checkpoint folder> step <global step>" or
  // "<bundle folder> <bundle version>".
  const std::string& version() const { return version_; }
  // The Device Observer UID its DICOM reports carry: a bundle's own, else one for this run.
  const std::string& device_uid() const { return device_uid_; }
  // Every built head's prediction for a normalised film, coarsest first (predict_heads).
  std::vector<HeadPrediction> predict(const hds::data::Film& film);
  HdsNet& model() { return model_; }

 private:
  hds::config::Config config_;
  std::optional<Normalisation> normalisation_;
  std::string version_;
  std::string device_uid_;
  torch::Device device_{torch::kCPU};
  HdsNet model_{nullptr};
};

// 1 where `probability` is above the operating threshold, else 0.
std::vector<uint8_t> operating_mask(const std::vector<float>& probability);

// Writes `path`: the grey picture (0..255) with the outline of `predicted` in green and, unless
// null, of `truth` in red.
void write_overlay_png(const std::string& path, int rows, int cols,
                       const std::vector<uint8_t>& grey, const uint8_t* truth,
                       const uint8_t* predicted);

}  // namespace hds::trainer

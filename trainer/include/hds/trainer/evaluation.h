// Whole-image evaluation as the reference does it (docs/design.md §3): eval mode, the last built
// head, mask = softmax foreground > 0.5, image probability from the classification map's MIL
// instance (or, for the segmentation-only variant, the largest mask probability).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

struct EvaluationResult {
  int films = 0;
  int films_with_mass = 0;
  double dice = 0;      // mean per-film Dice over films with a mass (all films when none has one)
  double accuracy = 0;  // image label = probability > 0.5 against "film has a mass"
  double auc = 0;       // NaN when only one class is present
};

// Per-film outputs, for evaluation and inference alike.
struct FilmPrediction {
  torch::Tensor mask;  // [rows, cols] uint8 0/1 (CPU)
  double mass_probability = 0;
};

// Runs `model` in eval mode (restoring its mode after) on one normalised film.
FilmPrediction predict_film(HdsNet& model, const hds::data::Film& film,
                            const hds::config::LossConfig& loss, const torch::Device& device);

// One head's output for a film: the foreground (mass) probability of every pixel, rows x cols
// row-major, and the image's mass probability (the MIL rule of training, or for the
// segmentation-only variant the largest foreground probability).
struct HeadPrediction {
  int head = 0;
  std::vector<float> foreground;
  double mass_probability = 0;
};
// Every built head's prediction for one film, coarsest first, in eval mode (the model's mode is
// restored after).
std::vector<HeadPrediction> predict_heads(HdsNet& model, const hds::data::Film& film,
                                          const hds::config::LossConfig& loss,
                                          const torch::Device& device);

EvaluationResult evaluate(HdsNet& model, const std::vector<hds::data::Film>& films,
                          const hds::config::LossConfig& loss, const torch::Device& device);

}  // namespace hds::trainer

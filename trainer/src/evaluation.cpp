#include "hds/trainer/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "hds/scoring/scoring.h"
#include "hds/trainer/losses.h"

namespace hds::trainer {
using hds::config::LossConfig;

namespace {

// The heads' outputs for one film in eval mode (the model's mode is restored after).
HdsOutput forward_film(HdsNet& model, const hds::data::Film& film, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  // from_blob does not copy: clone after the move so the film's buffer is never written.
  const auto input = torch::from_blob(const_cast<float*>(film.image.data()),
                                      {1, 1, film.rows, film.cols}, torch::kFloat)
                         .to(device)
                         .clone();
  HdsOutput output = model->forward(input);
  model->train(was_training);
  return output;
}

// One head's foreground probabilities [rows, cols] and the image's mass probability.
std::pair<torch::Tensor, double> head_prediction(const HdsOutput& output, size_t index,
                                                 const LossConfig& loss) {
  const auto foreground = torch::softmax(output.seg[index], 1).select(1, 1)[0];
  const double probability =
      loss.variant() == LossConfig::SEG_DEEP_SUPERVISION
          ? foreground.max().item<double>()
          : image_probability(output.cls[index], loss.mil_rule()).item<double>();
  return {foreground, probability};
}

}  // namespace

FilmPrediction predict_film(HdsNet& model, const hds::data::Film& film, const LossConfig& loss,
                            const torch::Device& device) {
  const HdsOutput output = forward_film(model, film, device);
  const auto [foreground, probability] = head_prediction(output, output.seg.size() - 1, loss);
  FilmPrediction prediction;
  prediction.mask = (foreground > hds::scoring::kOperatingThreshold).to(torch::kCPU, torch::kUInt8);
  prediction.mass_probability = probability;
  return prediction;
}

std::vector<HeadPrediction> predict_heads(HdsNet& model, const hds::data::Film& film,
                                          const LossConfig& loss, const torch::Device& device) {
  const HdsOutput output = forward_film(model, film, device);
  std::vector<HeadPrediction> predictions;
  for (size_t index = 0; index < output.seg.size(); ++index) {
    const auto [foreground, probability] = head_prediction(output, index, loss);
    const auto cpu = foreground.to(torch::kCPU, torch::kFloat).contiguous();
    HeadPrediction prediction;
    prediction.head = model->heads()[index];
    prediction.foreground.assign(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
    prediction.mass_probability = probability;
    predictions.push_back(std::move(prediction));
  }
  return predictions;
}

EvaluationResult evaluate(HdsNet& model, const std::vector<hds::data::Film>& films,
                          const LossConfig& loss, const torch::Device& device) {
  EvaluationResult result;
  std::vector<double> scores, dice_with_mass, dice_all;
  std::vector<int> labels;
  int correct = 0;
  for (const auto& film : films) {
    const auto prediction = predict_film(model, film, loss, device);
    const double dice_score = hds::scoring::dice(prediction.mask.contiguous().data_ptr<uint8_t>(),
                                                 film.mask.data(), film.mask.size());
    const int label = film.has_mass() ? 1 : 0;
    (label ? dice_with_mass : dice_all).push_back(dice_score);
    scores.push_back(prediction.mass_probability);
    labels.push_back(label);
    correct += (prediction.mass_probability > hds::scoring::kOperatingThreshold) == (label == 1);
  }
  auto mean = [](const std::vector<double>& v) {
    return v.empty() ? std::numeric_limits<double>::quiet_NaN()
                     : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  };
  result.films = static_cast<int>(films.size());
  result.films_with_mass = static_cast<int>(dice_with_mass.size());
  dice_all.insert(dice_all.end(), dice_with_mass.begin(), dice_with_mass.end());
  result.dice = dice_with_mass.empty() ? mean(dice_all) : mean(dice_with_mass);
  result.accuracy = films.empty() ? std::numeric_limits<double>::quiet_NaN()
                                  : static_cast<double>(correct) / films.size();
  result.auc = hds::scoring::roc_auc(scores, labels);
  return result;
}

}  // namespace hds::trainer

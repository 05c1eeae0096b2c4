#include "hds/trainer/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "hds/common/architecture.h"

namespace hds::trainer {
namespace {

std::vector<double> decayed(const google::protobuf::RepeatedField<double>& initial,
                            double final_decay, int epochs, int epoch) {
  if (epoch < 1) throw std::invalid_argument("head weights: epochs are 1-based");
  const double per_epoch = std::pow(final_decay, 1.0 / epochs);
  std::vector<double> weights(initial.begin(), initial.end());
  for (int e = 1; e < epoch; ++e) {
    for (int head = 0; head + 1 < static_cast<int>(weights.size()); ++head) {
      weights[head] *= per_epoch;
    }
  }
  return weights;
}

}  // namespace

HeadTerms head_terms(hds::config::LossConfig::Variant variant, int head) {
  using hds::config::LossConfig;
  const bool last = head == hds::common::kHeadCount - 1;
  switch (variant) {
    case LossConfig::HDS:
      return {true, true};
    case LossConfig::MULTITASK_LAST_HEAD:
      return {last, last};
    case LossConfig::CLS_DEEP_SUPERVISION:
      return {false, true};
    case LossConfig::SEG_DEEP_SUPERVISION:
      return {true, false};
  }
  throw std::invalid_argument("unknown loss variant");
}

std::vector<double> seg_head_weights(const hds::config::Config& config, int epoch) {
  return decayed(config.loss().seg_head_weights(), config.loss().seg_final_decay(),
                 config.train().epochs(), epoch);
}

std::vector<double> cls_head_weights(const hds::config::Config& config, int epoch) {
  return decayed(config.loss().cls_head_weights(), config.loss().cls_final_decay(),
                 config.train().epochs(), epoch);
}

double learning_rate(const hds::config::Config& config, int epoch) {
  if (epoch < 1) throw std::invalid_argument("learning rate: epochs are 1-based");
  const hds::config::OptimizerConfig& optimizer = config.optimizer();
  double lr = optimizer.learning_rate();
  if (optimizer.schedule() == hds::config::OptimizerConfig::POLY) {
    const double done = static_cast<double>(epoch - 1) / config.train().epochs();
    lr *= std::pow(std::max(0.0, 1.0 - done), optimizer.poly_power());
  } else {
    for (int milestone : optimizer.lr_milestones()) {
      if (milestone <= epoch - 1) lr *= optimizer.lr_gamma();
    }
  }
  if (epoch <= optimizer.warmup_epochs()) lr *= epoch / (optimizer.warmup_epochs() + 1.0);
  return lr;
}

}  // namespace hds::trainer

#include "hds/trainer/optimizer.h"

#include <stdexcept>
#include <tuple>

namespace hds::trainer {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::vector<torch::Tensor>& parameters, const hds::config::OptimizerConfig& config) {
  switch (config.kind()) {
    case hds::config::OptimizerConfig::SGD:
      return std::make_unique<torch::optim::SGD>(parameters,
                                                 torch::optim::SGDOptions(config.learning_rate())
                                                     .momentum(config.momentum())
                                                     .dampening(0)
                                                     .weight_decay(config.weight_decay())
                                                     .nesterov(false));
    case hds::config::OptimizerConfig::ADAMW:
      return std::make_unique<torch::optim::AdamW>(
          parameters, torch::optim::AdamWOptions(config.learning_rate())
                          .betas(std::make_tuple(config.adam_beta1(), config.adam_beta2()))
                          .weight_decay(config.weight_decay()));
  }
  throw std::invalid_argument("optimizer.kind " + std::to_string(config.kind()) + " is unknown");
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace hds::trainer

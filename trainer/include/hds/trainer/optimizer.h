// The optimizer of a run (optimizer.kind, docs/design.md §3): SGD with momentum as the paper, or
// AdamW. The per-epoch learning rate comes from schedule.h and is set here on every parameter
// group. Not thread-safe (the optimizer is the training loop's).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "config.pb.h"

namespace hds::trainer {

// An optimizer of `parameters` as `config` says, at its base learning rate. Weight decay applies
// to every parameter: added to the gradient for SGD, decoupled (w -= lr·decay·w) for AdamW.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::vector<torch::Tensor>& parameters, const hds::config::OptimizerConfig& config);

// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace hds::trainer

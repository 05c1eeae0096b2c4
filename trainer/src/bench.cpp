#include "hds/trainer/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"
#include "hds/trainer/schedule.h"
#include "hds/trainer/training.h"

namespace hds::trainer {

BenchResult bench_training_step(const hds::config::Config& config, const BenchOptions& options) {
  if (options.steps < 1 || options.batch < 1) {
    throw std::invalid_argument("bench: --steps and --batch must be at least 1");
  }
  if (options.threads > 0) torch::set_num_threads(options.threads);
  const torch::Device device = resolve_device(options.device);
  torch::manual_seed(config.train().seed());
  HdsNet model(config.model());
  model->to(device);
  model->train();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(config.optimizer().learning_rate())
                                  .momentum(config.optimizer().momentum())
                                  .weight_decay(config.optimizer().weight_decay()));
  const auto images = torch::randn({options.batch, 1, options.height, options.width}).to(device);
  const auto masks =
      torch::randint(0, 2, {options.batch, options.height, options.width}, torch::kLong).to(device);
  const auto labels = torch::randint(0, 2, {options.batch}, torch::kLong).to(device);
  const auto seg_w = seg_head_weights(config, 1);
  const auto cls_w = cls_head_weights(config, 1);

  std::vector<double> times_ms;
  for (int i = 0; i < options.warmup + options.steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto output = model->forward(images);
    // hds_loss copies the loss parts to the host: the step ends with a device sync.
    const auto terms = hds_loss(output, model->heads(), masks, labels, config.loss(), seg_w, cls_w);
    optimizer.zero_grad();
    terms.total.backward();
    optimizer.step();
    if (device.is_cuda()) model->parameters().front().sum().item<float>();  // wait for the step
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= options.warmup) times_ms.push_back(ms);
  }
  std::sort(times_ms.begin(), times_ms.end());
  const size_t n = times_ms.size();
  BenchResult result;
  result.median_step_ms = n % 2 ? times_ms[n / 2] : (times_ms[n / 2 - 1] + times_ms[n / 2]) / 2;
  result.patches_per_second = options.batch * 1000.0 / result.median_step_ms;
  result.threads = torch::get_num_threads();
  return result;
}

}  // namespace hds::trainer

#include "bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "commands.h"
#include "hds/common/architecture.h"
#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/trainer/gradient_sync.h"
#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"
#include "hds/trainer/optimizer.h"
#include "hds/trainer/schedule.h"
#include "hds/trainer/step_compute.h"
#include "hds/trainer/training.h"

namespace hds::trainer {

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Waits until the device has done everything queued so far.
void wait_for_device(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace

std::vector<BenchResult> bench_training_step(const hds::config::Config& config,
                                             const BenchOptions& options, const World& world) {
  if (options.steps < 1 || options.batch < 1 || options.warmup < 0 || options.rounds < 1) {
    throw std::invalid_argument(
        "bench: --steps, --batch and --rounds must be at least 1, --warmup at least 0");
  }
  if (!hds::common::valid_input_side(options.height) ||
      !hds::common::valid_input_side(options.width)) {
    throw std::invalid_argument("bench: --height and --width must be positive multiples of " +
                                std::to_string(kInputMultiple) + ", not " +
                                std::to_string(options.height) + "x" +
                                std::to_string(options.width));
  }
  if (hds::common::batch_norm_lacks_values(options.batch, options.height, options.width)) {
    throw std::invalid_argument("bench: one " + std::to_string(options.height) + "x" +
                                std::to_string(options.width) +
                                " patch leaves BatchNorm one value a channel in the deepest maps, "
                                "which cannot train: use --batch 2 or more, or a larger patch");
  }
  if (options.threads > 0) torch::set_num_threads(options.threads);
  const torch::Device device = resolve_device(options.device, world.local_rank());
  torch::manual_seed(config.train().seed());
  HdsNet model(config.model());
  model->to(device);
  model->train();
  const StepCompute compute = step_compute(config.train(), device);
  prepare_model(model, compute);
  // The run's own optimizer (SGD by default): the bench times what training runs.
  const auto optimizer_owner = make_optimizer(model->parameters(), config.optimizer());
  torch::optim::Optimizer& optimizer = *optimizer_owner;
  const auto images = torch::randn({options.batch, 1, options.height, options.width}).to(device);
  const auto masks =
      torch::randint(0, 2, {options.batch, options.height, options.width}, torch::kLong).to(device);
  const auto labels = torch::randint(0, 2, {options.batch}, torch::kLong).to(device);
  const auto seg_w = seg_head_weights(config, 1);
  const auto cls_w = cls_head_weights(config, 1);

  // One step; with `sync`, gradients are averaged over the ranks as in fit().
  auto step = [&](GradientSync* sync) {
    const auto start = std::chrono::steady_clock::now();
    StepPhases phases;
    phases.forward_and_backward = [&] {
      forward_and_loss(model, images, masks, labels, config.loss(), seg_w, cls_w, compute)
          .total.backward();
    };
    run_optimisation_step(optimizer, sync, 1.0 / world.size(), phases);
    wait_for_device(device);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };

  for (int i = 0; i < options.warmup; ++i) step(nullptr);
  // With --sync, blocks of plain and synced steps alternate so that drift hits both alike. The
  // sync's hooks live only during its blocks.
  const auto measure = [&] {
    BenchResult result;
    result.threads = torch::get_num_threads();
    result.precision = hds::config::TrainConfig::Precision_Name(compute.precision);
    result.channels_last = compute.channels_last;
    result.world_size = world.size();
    std::vector<double> plain_ms, sync_ms, allreduce_ms;
    const int blocks = options.sync ? std::min(options.steps, 3) : 1;
    for (int block = 0; block < blocks; ++block) {
      const int steps = options.steps / blocks + (block < options.steps % blocks ? 1 : 0);
      world.barrier();
      for (int i = 0; i < steps; ++i) plain_ms.push_back(step(nullptr));
      if (!options.sync) continue;
      const auto sync =
          GradientSync::create(world, model->parameters(), config.distributed(), device);
      result.backend = sync->backend_name();
      result.buckets = sync->bucket_count();
      result.gradient_bytes = 0;
      for (int b = 0; b < sync->bucket_count(); ++b) result.gradient_bytes += sync->bucket_bytes(b);
      step(sync.get());  // the first synced step sets up the backend's buffers and channels
      world.barrier();
      for (int i = 0; i < steps; ++i) sync_ms.push_back(step(sync.get()));
      for (int i = 0; i < steps; ++i) {
        world.barrier();
        const auto start = std::chrono::steady_clock::now();
        sync->begin_step(1);
        sync->finish_step();
        wait_for_device(device);
        allreduce_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
      }
    }
    result.median_step_ms = median(plain_ms);
    result.patches_per_second = options.batch * 1000.0 / result.median_step_ms;
    if (options.sync) {
      result.median_step_sync_ms = median(sync_ms);
      result.exposed_sync_fraction =
          (result.median_step_sync_ms - result.median_step_ms) / result.median_step_sync_ms;
      result.median_allreduce_ms = median(allreduce_ms);
      result.algorithm_gb_per_s =
          static_cast<double>(result.gradient_bytes) / (result.median_allreduce_ms * 1e6);
      result.bus_gb_per_s =
          result.algorithm_gb_per_s * 2.0 * (world.size() - 1) / static_cast<double>(world.size());
    }
    return result;
  };
  std::vector<BenchResult> results;
  for (int round = 0; round < options.rounds; ++round) results.push_back(measure());
  return results;
}

std::string to_json_line(const BenchOptions& options, const BenchResult& result, int round) {
  nlohmann::json json{{"round", round},
                      {"device", options.device},
                      {"batch", options.batch},
                      {"height", options.height},
                      {"width", options.width},
                      {"steps", options.steps},
                      {"threads", result.threads},
                      {"precision", result.precision},
                      {"channels_last", result.channels_last},
                      {"median_step_ms", result.median_step_ms},
                      {"patches_per_second", result.patches_per_second}};
  if (options.sync) {
    json.update({{"world_size", result.world_size},
                 {"backend", result.backend},
                 {"buckets", result.buckets},
                 {"gradient_bytes", result.gradient_bytes},
                 {"median_step_sync_ms", result.median_step_sync_ms},
                 {"exposed_sync_fraction", result.exposed_sync_fraction},
                 {"median_allreduce_ms", result.median_allreduce_ms},
                 {"algorithm_gb_per_s", result.algorithm_gb_per_s},
                 {"bus_gb_per_s", result.bus_gb_per_s}});
  }
  return json.dump();
}

void run_bench_command(const hds::config::Config& config, const BenchOptions& options,
                       const World& world, std::ostream& out) {
  const std::vector<BenchResult> results = bench_training_step(config, options, world);
  if (!world.is_root()) return;
  for (size_t round = 0; round < results.size(); ++round)
    out << to_json_line(options, results[round], static_cast<int>(round) + 1) << std::endl;
}

namespace {

CLI::App* add_bench_options(CLI::App& app, std::string& config_path,
                            std::vector<std::string>& overrides, BenchOptions& bench) {
  CLI::App* command = app.add_subcommand("bench", "time a full training step");
  hds::common::add_config_options(*command, config_path, overrides, false);
  command->add_option("--batch", bench.batch, "patches per step");
  command->add_option("--height", bench.height, "patch rows (multiple of 128)");
  command->add_option("--width", bench.width, "patch cols (multiple of 128)");
  command->add_option("--steps", bench.steps, "timed steps");
  command->add_option("--warmup", bench.warmup, "untimed steps first");
  command->add_option("--rounds", bench.rounds,
                      "measurements after the one warm-up, a line each (one process: no start-up "
                      "per figure)");
  command->add_option("--threads", bench.threads, "intra-op threads (0: LibTorch's choice)");
  command->add_flag("--sync", bench.sync,
                    "also time the gradient sync over the MPI ranks (run under mpirun)");
  command->add_option("--device", bench.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  return command;
}

}  // namespace

hds::common::Subcommand add_bench_command(CLI::App& app, std::unique_ptr<World>& world,
                                          std::ostream& out) {
  struct State {
    std::string config_path;
    std::vector<std::string> overrides;
    BenchOptions bench;
  };
  auto state = std::make_shared<State>();
  return {add_bench_options(app, state->config_path, state->overrides, state->bench),
          [state, &world, &out] {
            const hds::config::Config config =
                hds::config::load_config_or_paper(state->config_path, state->overrides);
            world = World::from_environment();
            run_bench_command(config, state->bench, *world, out);
            return hds::common::kExitFinished;
          }};
}

}  // namespace hds::trainer

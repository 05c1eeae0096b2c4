#include "hds/trainer/training.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <google/protobuf/util/message_differencer.h>
#include <nlohmann/json.hpp>

#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/trainer/batch_source.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/evaluation.h"
#include "hds/trainer/gradient_sync.h"
#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"
#include "hds/trainer/schedule.h"

namespace hds::trainer {
namespace fs = std::filesystem;
using hds::checkpoint::CheckpointMeta;
using hds::checkpoint::ValidationResult;
using hds::config::Config;
using Clock = std::chrono::steady_clock;

torch::Device resolve_device(const std::string& name, int local_rank) {
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error("train.device = cuda, but this LibTorch build sees no CUDA device");
    }
    const auto devices = static_cast<int>(torch::cuda::device_count());
    if (local_rank >= devices) {
      throw std::runtime_error("local rank " + std::to_string(local_rank) + " needs GPU " +
                               std::to_string(local_rank) + ", but this node has " +
                               std::to_string(devices) + ": start at most one rank per GPU");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  }
  return torch::Device(torch::kCPU);
}

namespace {

// Where the progress of ranks other than 0 goes.
class NullStream : public std::ostream {
 public:
  NullStream() : std::ostream(nullptr) {}
};

struct StepTensors {
  torch::Tensor images;  // [n, 1, rows, cols] float
  torch::Tensor masks;   // [n, rows, cols] int64
  torch::Tensor labels;  // [n] int64
};

StepTensors to_tensors(const hds::data::PatchBatch& batch, const torch::Device& device) {
  const int64_t n = batch.count;
  StepTensors t;
  t.images = torch::from_blob(const_cast<float*>(batch.images.data()), {n, 1, batch.rows, batch.cols},
                              torch::kFloat)
                 .to(device, /*non_blocking=*/false, /*copy=*/true);
  t.masks = torch::from_blob(const_cast<uint8_t*>(batch.masks.data()), {n, batch.rows, batch.cols},
                             torch::kUInt8)
                .to(device, torch::kLong);
  t.labels = torch::from_blob(const_cast<uint8_t*>(batch.labels.data()), {n}, torch::kUInt8)
                 .to(device, torch::kLong);
  return t;
}

// One device-to-host copy for the whole model, not one per parameter (each is a GPU sync).
double l2_norm_of_gradients(const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> squares;
  for (const auto& parameter : model.parameters()) {
    if (parameter.grad().defined()) squares.push_back(parameter.grad().pow(2).sum());
  }
  return squares.empty() ? 0.0 : std::sqrt(torch::stack(squares).sum().item<double>());
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream out;
  if (total >= 3600) out << total / 3600 << "h";
  if (total >= 60) out << (total / 60) % 60 << "m";
  out << total % 60 << "s";
  return out.str();
}

void set_learning_rate(torch::optim::SGD& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

ValidationResult to_validation_result(int epoch, const EvaluationResult& r) {
  ValidationResult v;
  v.set_epoch(epoch);
  v.set_dice(r.dice);
  v.set_accuracy(r.accuracy);
  v.set_auc(r.auc);
  return v;
}

// Names the first non-finite term of a step, with where to resume from.
void check_finite(const LossTerms& terms, int epoch, int step, int64_t global_step,
                  const std::string& last_checkpoint) {
  std::string bad;
  for (size_t i = 0; i < terms.heads.size() && bad.empty(); ++i) {
    const std::string head = " loss of head " + std::to_string(terms.heads[i]) + " is ";
    if (terms.seg_on[i] && !std::isfinite(terms.seg[i])) {
      bad = "segmentation" + head + (std::isnan(terms.seg[i]) ? "NaN" : "infinite");
    } else if (terms.cls_on[i] && !std::isfinite(terms.cls[i])) {
      bad = "classification" + head + (std::isnan(terms.cls[i]) ? "NaN" : "infinite");
    }
  }
  if (bad.empty()) return;
  std::ostringstream msg;
  msg << "non-finite loss at epoch " << epoch << ", step " << step << " (global step "
      << global_step << "): " << bad << "; last good checkpoint: "
      << (last_checkpoint.empty() ? "none yet" : last_checkpoint);
  throw NonFiniteLossError(msg.str());
}

void write_summary(const fs::path& path, const FitResult& result) {
  auto validation = [](const ValidationResult& v) {
    return nlohmann::json{{"epoch", v.epoch()}, {"dice", v.dice()}, {"accuracy", v.accuracy()},
                          {"auc", std::isnan(v.auc()) ? nlohmann::json() : nlohmann::json(v.auc())}};
  };
  nlohmann::json summary{{"finished", result.finished},
                         {"completed_epochs", result.completed_epochs},
                         {"global_step", result.global_step},
                         {"last_loss", result.last_loss},
                         {"last_checkpoint", result.last_checkpoint},
                         {"best_dice", validation(result.best_dice)},
                         {"best_accuracy", validation(result.best_accuracy)},
                         {"last_validation", validation(result.last_validation)}};
  const fs::path temp = path.string() + ".tmp";
  std::ofstream(temp) << summary.dump(2) << "\n";
  fs::rename(temp, path);
}

}  // namespace

FitResult fit(const Config& config, const FitOptions& options) {
  const World single_process;
  const World& world = options.world ? *options.world : single_process;
  // Rank 0 speaks for the job; the other ranks report only errors.
  NullStream quiet;
  std::ostream& log = world.is_root() ? (options.log ? *options.log : std::cout) : quiet;
  const auto& train = config.train();
  if (train.threads() > 0) torch::set_num_threads(train.threads());
  const torch::Device device = resolve_device(train.device(), world.local_rank());
  // Every rank draws the same initial weights and dropout masks (rank 0 broadcasts the weights
  // anyway), so rank 0's saved generator state resumes every rank exactly.
  torch::manual_seed(train.seed());

  const auto dataset = hds::data::load_dataset(config.data());
  log << "data: " << config.data().source() << ", " << dataset.train.size() << " train / "
      << dataset.val.size() << " val / " << dataset.test.size() << " test films, mean "
      << dataset.mean << " std " << dataset.std << "\n";

  HdsNet model(config.model());
  model->to(device);
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(config.optimizer().learning_rate())
                                  .momentum(config.optimizer().momentum())
                                  .dampening(0)
                                  .weight_decay(config.optimizer().weight_decay())
                                  .nesterov(false));

  FitResult result;
  int start_epoch = 1;
  int start_step = 0;
  CheckpointStore store((fs::path(train.output_dir()) / "checkpoints").string());
  if (!options.resume_from.empty()) {
    const CheckpointMeta meta = load_checkpoint(options.resume_from, model, &optimizer);
    Config saved;
    try {
      saved = hds::config::parse_config(meta.config_text(), options.resume_from + " (saved config)");
    } catch (const std::exception& e) {
      throw CheckpointError(std::string("resume: ") + e.what());
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(saved.model(), config.model())) {
      throw CheckpointError("resume: " + options.resume_from +
                            " holds a model of another configuration than this run's model block");
    }
    set_cpu_rng_state(meta.cpu_rng_state());
    start_epoch = meta.completed_epochs() + 1;
    start_step = meta.step_in_epoch();
    result.global_step = meta.global_step();
    result.completed_epochs = meta.completed_epochs();
    result.best_dice = meta.best_dice();
    result.best_accuracy = meta.best_accuracy();
    result.last_validation = meta.last_validation();
    result.last_loss = meta.last_loss();
    result.last_checkpoint = fs::canonical(store.latest().empty() ? options.resume_from
                                                                  : store.latest())
                                 .string();
    log << "resumed from " << fs::canonical(options.resume_from).string() << " at epoch " << start_epoch << ", step "
        << start_step << " (global step " << result.global_step << ")\n";
  }

  const hds::data::SamplerOptions sampler_options = hds::data::sampler_options_for(config);
  // With data.service_socket set, training batches come from hds-data-service; the dataset is
  // still loaded here for validation (for now).
  const std::unique_ptr<BatchSource> batch_source =
      make_batch_source(config, dataset.train, sampler_options, world.rank(), world.size());
  BatchSource& source = *batch_source;
  const int steps = source.steps_per_epoch();
  const int epochs = train.epochs();
  const int64_t total_steps = static_cast<int64_t>(steps) * epochs;

  std::unique_ptr<GradientSync> sync;
  if (world.size() > 1) {
    sync = GradientSync::create(world, model->parameters(), config.distributed(), device);
    // Parameters and BatchNorm buffers start equal on every rank; the statistics then stay per
    // rank (DESIGN §5).
    std::vector<torch::Tensor> state = model->parameters();
    for (const auto& buffer : model->buffers()) state.push_back(buffer);
    {
      torch::NoGradGuard no_grad;
      sync->broadcast_from_root(state);
    }
    log << "distributed: " << world.size() << " ranks, " << sync->backend_name()
        << " gradient sync in " << sync->bucket_count() << " buckets\n";
  }

  // Only rank 0 writes checkpoints; it returns "" elsewhere.
  int64_t checkpointed_step = result.global_step;  // the step of the last checkpoint written
  auto save_checkpoint = [&](int completed_epochs, int step_in_epoch, const std::vector<double>& seg_w,
                             const std::vector<double>& cls_w, double lr) -> std::string {
    if (!world.is_root()) return "";
    CheckpointMeta meta;
    meta.set_completed_epochs(completed_epochs);
    meta.set_step_in_epoch(step_in_epoch);
    meta.set_global_step(result.global_step);
    for (double w : seg_w) meta.add_seg_head_weights(w);
    for (double w : cls_w) meta.add_cls_head_weights(w);
    meta.set_learning_rate(lr);
    meta.set_cpu_rng_state(cpu_rng_state());
    meta.set_config_text(hds::config::to_text(config));
    *meta.mutable_best_dice() = result.best_dice;
    *meta.mutable_best_accuracy() = result.best_accuracy;
    *meta.mutable_last_validation() = result.last_validation;
    meta.set_last_loss(result.last_loss);
    const auto save_start = Clock::now();
    result.last_checkpoint = store.save(model, optimizer, meta);
    if (options.on_checkpoint) {
      options.on_checkpoint(std::chrono::duration<double>(Clock::now() - save_start).count());
    }
    store.prune(train.keep_checkpoints());
    log << "checkpoint " << result.last_checkpoint << "\n";
    checkpointed_step = result.global_step;
    return result.last_checkpoint;
  };

  model->train();
  const auto run_start = Clock::now();
  int64_t steps_this_run = 0;
  int64_t patches_this_run = 0;  // on all ranks: the job's throughput
  for (int epoch = start_epoch; epoch <= epochs; ++epoch) {
    const auto seg_w = seg_head_weights(config, epoch);
    const auto cls_w = cls_head_weights(config, epoch);
    const double lr = learning_rate(config.optimizer(), epoch);
    set_learning_rate(optimizer, lr);
    const int first_step = epoch == start_epoch ? start_step : 0;
    for (int step = first_step; step < steps; ++step) {
      const auto step_start = Clock::now();
      hds::data::PatchBatch batch;
      try {
        batch = source.batch(epoch, step);
      } catch (const std::exception& e) {
        // A data service that died (or a film that cannot be read) loses no training: rank 0
        // checkpoints the steps done so far before the error ends the run.
        if (world.is_root() && result.global_step > checkpointed_step) {
          log << "data source failed: " << e.what() << "\n";
          save_checkpoint(epoch - 1, step, seg_w, cls_w, lr);
        }
        throw;
      }
      const double data_wait = std::chrono::duration<double>(Clock::now() - step_start).count();
      LossTerms terms;
      optimizer.zero_grad();
      // This rank's gradient counts by its share of the step's patches (the last step of an
      // epoch may leave a rank fewer, or none).
      const int64_t step_patches = world.sum(batch.count);
      if (sync) sync->begin_step(static_cast<double>(batch.count) / static_cast<double>(step_patches));
      if (batch.count > 0) {
        const auto tensors = to_tensors(batch, device);
        const auto output = model->forward(tensors.images);
        terms = hds_loss(output, model->heads(), tensors.masks, tensors.labels, config.loss(),
                         seg_w, cls_w);
        check_finite(terms, epoch, step + 1, result.global_step + 1, result.last_checkpoint);
        terms.total.backward();
      }
      const auto sync_start = Clock::now();
      if (sync) sync->finish_step();
      const double sync_wait = std::chrono::duration<double>(Clock::now() - sync_start).count();
      // Only for reporting: one pass over the gradients and a device sync.
      const double gradient_norm = options.on_step ? l2_norm_of_gradients(*model) : 0;
      optimizer.step();
      ++result.global_step;
      ++steps_this_run;
      patches_this_run += step_patches;
      result.last_loss = terms.seg_weighted_sum + terms.cls_weighted_sum;
      if (options.on_step) {
        StepReport report;
        report.epoch = epoch;
        report.step = step + 1;
        report.steps_per_epoch = steps;
        report.global_step = result.global_step;
        report.patches = batch.count;
        report.loss = result.last_loss;
        report.heads = terms.heads;
        report.seg = terms.seg;
        report.cls = terms.cls;
        report.learning_rate = lr;
        report.seg_weights = seg_w;
        report.cls_weights = cls_w;
        report.seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
        report.data_wait_seconds = data_wait;
        report.sync_wait_seconds = sync_wait;
        report.gradient_norm = gradient_norm;
        options.on_step(report);
      }

      const bool epoch_end = step + 1 == steps;
      if (epoch_end || steps_this_run % train.log_every_steps() == 0) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double eta = elapsed / steps_this_run * (total_steps - result.global_step);
        log << "epoch " << epoch << "/" << epochs << " step " << step + 1 << "/" << steps
            << " loss " << std::setprecision(5) << result.last_loss << " (seg "
            << terms.seg_weighted_sum << " cls " << terms.cls_weighted_sum << ") lr " << lr
            << " " << std::setprecision(3) << patches_this_run / elapsed << " patches/s eta "
            << format_duration(eta) << std::endl;
      }
      // Every rank stops at the same step when any rank was asked to.
      const bool stop = world.any(
          (options.stop_requested && options.stop_requested()) ||
          (options.stop_at_step > 0 && result.global_step >= options.stop_at_step));
      if (stop && !epoch_end) {
        save_checkpoint(epoch - 1, step + 1, seg_w, cls_w, lr);
        log << "stopped at epoch " << epoch << ", step " << step + 1 << " on request\n";
        if (world.is_root()) write_summary(fs::path(train.output_dir()) / "summary.json", result);
        // Ranks leave together: a launcher ends the whole job when the first rank exits with 75,
        // which must not happen while rank 0 still writes the checkpoint.
        world.barrier();
        return result;
      }
    }
    result.completed_epochs = epoch;

    // Rank 0 validates (with its BatchNorm statistics); the others wait in the next collective.
    const bool validate = world.is_root() && epoch >= train.validate_from() &&
                          (epoch - train.validate_from()) % train.validate_every() == 0 &&
                          !dataset.val.empty();
    bool improved_dice = false, improved_accuracy = false;
    if (validate) {
      const auto evaluation = evaluate(model, dataset.val, config.loss(), device);
      result.last_validation = to_validation_result(epoch, evaluation);
      // Ties go to the later epoch, as in the reference.
      improved_dice = !result.best_dice.has_epoch() || evaluation.dice >= result.best_dice.dice();
      improved_accuracy = !result.best_accuracy.has_epoch() ||
                          evaluation.accuracy >= result.best_accuracy.accuracy();
      if (options.on_validation) options.on_validation(result.last_validation);
      if (improved_dice) result.best_dice = result.last_validation;
      if (improved_accuracy) result.best_accuracy = result.last_validation;
      log << "validation epoch " << epoch << ": dice " << std::setprecision(4) << evaluation.dice
          << " accuracy " << evaluation.accuracy << " auc " << evaluation.auc << " ("
          << evaluation.films << " films, " << evaluation.films_with_mass << " with masses)"
          << (improved_dice ? " [best dice]" : "") << (improved_accuracy ? " [best accuracy]" : "")
          << "\n";
    }
    const bool stop =
        world.any((options.stop_requested && options.stop_requested()) ||
                  (options.stop_at_step > 0 && result.global_step >= options.stop_at_step));
    if (improved_dice || improved_accuracy || stop || epoch == epochs ||
        epoch % train.checkpoint_every() == 0) {
      // The weights stored are those of the next epoch: what a resumed run continues with.
      const int next = std::min(epoch + 1, epochs);
      const auto dir = save_checkpoint(epoch, 0, seg_head_weights(config, next),
                                       cls_head_weights(config, next),
                                       learning_rate(config.optimizer(), next));
      if (improved_dice && world.is_root()) store.link("best-dice", dir);
      if (improved_accuracy && world.is_root()) store.link("best-accuracy", dir);
    }
    if (stop && epoch < epochs) {
      log << "stopped after epoch " << epoch << " on request\n";
      if (world.is_root()) write_summary(fs::path(train.output_dir()) / "summary.json", result);
      world.barrier();  // as above
      return result;
    }
  }
  result.finished = true;
  if (world.is_root()) write_summary(fs::path(train.output_dir()) / "summary.json", result);
  return result;
}

}  // namespace hds::trainer

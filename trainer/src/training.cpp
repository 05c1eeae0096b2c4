#include "hds/trainer/training.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "device_memory.h"
#include "hds/common/architecture.h"
#include "hds/common/exit_codes.h"
#include "hds/common/rank_progress.h"
#include "hds/common/read_file.h"
#include "hds/common/text_format.h"
#include "hds/config/config.h"
#include "hds/trainer/evaluation.h"
#include "hds/trainer/optimizer.h"
#include "hds/trainer/schedule.h"
#include "hds/trainer/watchdog.h"
#include "training_loop.h"

namespace hds::trainer {
namespace fs = std::filesystem;
using hds::checkpoint::CheckpointMeta;
using hds::checkpoint::ValidationResult;
using hds::config::Config;
using hds::config::OptimizerConfig;
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

struct StepTensors {
  torch::Tensor images;  // [n, 1, rows, cols] float
  torch::Tensor masks;   // [n, rows, cols] int64
  torch::Tensor labels;  // [n] int64
};

StepTensors to_tensors(const hds::transport::PatchBatch& batch, const torch::Device& device) {
  const int64_t n = batch.count;
  StepTensors t;
  t.images = torch::from_blob(const_cast<float*>(batch.images.data()),
                              {n, 1, batch.rows, batch.cols}, torch::kFloat)
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

// The buffers of dtype float (`floats`) or of the other dtypes (as int64), flattened into one
// tensor: one copy where there are dozens of small BatchNorm buffers.
torch::Tensor flatten_buffers(const std::vector<torch::Tensor>& buffers, bool floats) {
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& buffer : buffers) {
    if ((buffer.scalar_type() == torch::kFloat) != floats) continue;
    parts.push_back(buffer.reshape({-1}).to(floats ? torch::kFloat : torch::kLong));
  }
  return parts.empty() ? torch::Tensor() : torch::cat(parts);
}

// Copies flatten_buffers' `flat` back into `buffers`.
void restore_buffers(std::vector<torch::Tensor>& buffers, const torch::Tensor& flat, bool floats) {
  int64_t offset = 0;
  for (torch::Tensor& buffer : buffers) {
    if ((buffer.scalar_type() == torch::kFloat) != floats) continue;
    buffer.copy_(flat.narrow(0, offset, buffer.numel()).view(buffer.sizes()));
    offset += buffer.numel();
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

// Names the first non-finite term of a step, with where to resume from; "" when all are finite.
std::string nonfinite_loss_problem(const LossTerms& terms, int epoch, int step, int64_t global_step,
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
  if (bad.empty()) return "";
  std::ostringstream msg;
  msg << "non-finite loss at epoch " << epoch << ", step " << step << " (global step "
      << global_step << "): " << bad
      << "; last good checkpoint: " << (last_checkpoint.empty() ? "none yet" : last_checkpoint);
  return msg.str();
}

void write_summary(const fs::path& path, const FitResult& result) {
  auto validation = [](const ValidationResult& v) {
    return nlohmann::json{
        {"epoch", v.epoch()},
        {"dice", v.dice()},
        {"accuracy", v.accuracy()},
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
  hds::common::replace_file(path.string(), summary.dump(2) + "\n");
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool lone_patch_without_statistics(const hds::transport::PatchBatch& batch) {
  return batch.count == 1 && hds::common::batch_norm_lacks_values(1, batch.rows, batch.cols);
}

// For a checkpoint that cannot be read: "; the newest intact checkpoint beside it is X (--resume
// X)" when its checkpoints folder holds one, else "".
std::string intact_alternative(const std::string& checkpoint) {
  std::error_code error;
  fs::path root = hds::common::without_trailing_slash(checkpoint);
  if (fs::is_directory(root / "checkpoints", error)) {
    root /= "checkpoints";  // a run's folder
  } else if (!fs::exists(root / "latest", error)) {
    root = root.parent_path();  // a step folder
  }
  const std::string intact = newest_intact_checkpoint(root.string());
  if (intact.empty()) return "";
  return "; the newest intact checkpoint beside it is " + intact + " (--resume " + intact + ")";
}

}  // namespace

EpochSchedule epoch_schedule(const Config& config, int epoch) {
  return {seg_head_weights(config, epoch), cls_head_weights(config, epoch),
          learning_rate(config, epoch)};
}

TrainingLoop::TrainingLoop(const Config& config, const FitOptions& options)
    : config_(config),
      options_(options),
      world_(options.world ? *options.world : single_process_),
      // Rank 0 speaks for the job; the other ranks report only errors.
      log_(world_.is_root() ? (options.log ? *options.log : std::cout) : quiet_) {
  // Before this launch's records replace them: how far the previous launch of the run got.
  steps_done_before_ = steps_done_by_previous_launch();
  start_watchdog();
  const auto& train = config.train();
  if (train.threads() > 0) torch::set_num_threads(train.threads());
  device_ = resolve_device(train.device(), world_.local_rank());
  compute_ = step_compute(train, device_);  // refuses what the device cannot train, before any work
  // Every rank draws the same initial weights and dropout masks (rank 0 broadcasts the weights
  // anyway), so rank 0's saved generator state resumes every rank exactly.
  torch::manual_seed(train.seed());

  // Fed by a data service, a rank loads no training films: the service's batches and
  // normalisation stand for them (load_served_films, once connected).
  const bool served = !config.data().service_socket().empty();
  if (!served) {
    dataset_ = hds::data::load_dataset(config.data());
    log_ << "data: " << config.data().source() << ", " << dataset_.train.size() << " train / "
         << dataset_.val.size() << " val / " << dataset_.test.size() << " test films, mean "
         << dataset_.mean << " std " << dataset_.std << "\n";
  }

  model_ = HdsNet(config.model());
  model_->to(device_);
  optimizer_ = make_optimizer(model_->parameters(), config.optimizer());
  store_ =
      std::make_unique<CheckpointStore>((fs::path(train.output_dir()) / "checkpoints").string());
  if (!options.resume_from.empty()) {
    resume(options.resume_from);
  } else if (!options.init_from.empty()) {
    initialise_from(options.init_from);
  }
  prepare_model(model_, compute_);

  source_ = make_batch_source(
      config, dataset_.train, hds::data::sampler_options_for(config), world_.rank(), world_.size(),
      [this](const std::string& loss) {
        watchdog_->set_activity(RankActivity::reconnecting);
        log_ << loss << std::endl;
      },
      [this](const std::string& reconnected) {
        watchdog_->set_activity(RankActivity::waiting_for_data);
        log_ << reconnected << std::endl;
      });
  steps_per_epoch_ = source_->steps_per_epoch();
  if (served) load_served_films(*source_->normalisation());
  if (world_.size() > 1) connect_ranks();
  watchdog_->resumed_at(result_.global_step);
}

TrainingLoop::~TrainingLoop() = default;

void TrainingLoop::load_served_films(const hds::data_client::Normalisation& normalisation) {
  // Only rank 0 validates; every rank checkpoints the service's normalisation.
  hds::data::SplitSelection selection;
  selection.train = false;
  selection.val = world_.is_root() && config_.train().validate_from() <= config_.train().epochs();
  selection.test = false;
  selection.normalisation = hds::data::PixelStatistics{normalisation.mean, normalisation.std};
  dataset_ = hds::data::load_dataset(config_.data(), selection);
  log_ << "data: " << config_.data().source() << ", training batches from the data service at "
       << config_.data().service_socket() << ", " << dataset_.val.size()
       << " validation films loaded here, mean " << dataset_.mean << " std " << dataset_.std
       << "\n";
}

void TrainingLoop::start_watchdog() {
  WatchdogOptions watch;
  watch.progress_dir = hds::common::progress_table_dir(config_.train().output_dir());
  watch.instance = world_.instance();
  watch.rank = world_.rank();
  watch.world_size = world_.size();
  watch.timeout_seconds = hds::config::collective_timeout_seconds(config_);
  watch.first_step_timeout_seconds = config_.distributed().first_step_timeout_seconds();
  // Peers tell a silent rank from a busy one well within the limit.
  watch.heartbeat_seconds = std::min(1.0, watch.timeout_seconds / 10);
  if (world_.is_root() && options_.stop_overdue) {
    watch.every_check = [this] {
      if (options_.stop_overdue()) checkpoint_overdue_stop();
    };
  }
  watchdog_ = std::make_unique<Watchdog>(watch, [this](const std::string& report) {
    // One write: the ranks' lines interleave on a shared terminal.
    std::cerr << (world_.size() > 1 ? world_.describe() + ": " : std::string()) + report + "\n"
              << std::flush;
    if (GradientSync* sync = sync_to_abort_.load()) sync->abort();
    world_.abort(hds::common::kExitRankLost);
  });
  world_.observe(watchdog_.get());
  unobserve_.world = &world_;
}

void TrainingLoop::resume(const std::string& checkpoint) {
  CheckpointMeta checked;
  try {
    checked = read_checkpoint_meta(checkpoint);
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()) + intact_alternative(checkpoint));
  }
  // Checked before loading: another model or optimizer would fail inside LibTorch, unnamed.
  const Config saved = saved_config(checked, checkpoint);
  if (!google::protobuf::util::MessageDifferencer::Equals(saved.model(), config_.model())) {
    throw CheckpointError("resume: " + checkpoint +
                          " holds a model of another configuration than this run's model block");
  }
  if (saved.optimizer().kind() != config_.optimizer().kind()) {
    throw CheckpointError("resume: " + checkpoint + " was trained with optimizer.kind " +
                          OptimizerConfig::Kind_Name(saved.optimizer().kind()) +
                          "; this run's is " +
                          OptimizerConfig::Kind_Name(config_.optimizer().kind()) +
                          " (start a new schedule from its weights with --init-from)");
  }
  const CheckpointMeta meta = load_checkpoint(checkpoint, model_, optimizer_.get());
  set_cpu_rng_state(meta.cpu_rng_state());
  start_epoch_ = meta.completed_epochs() + 1;
  start_step_ = meta.step_in_epoch();
  position_ = {meta.completed_epochs(), meta.step_in_epoch()};
  result_.global_step = meta.global_step();
  result_.completed_epochs = meta.completed_epochs();
  result_.best_dice = meta.best_dice();
  result_.best_accuracy = meta.best_accuracy();
  result_.last_validation = meta.last_validation();
  result_.last_loss = meta.last_loss();
  result_.last_checkpoint = fs::canonical(resolve_checkpoint_dir(checkpoint)).string();
  checkpointed_step_ = result_.global_step;
  log_ << "resumed from " << fs::canonical(checkpoint).string() << " at epoch " << start_epoch_
       << ", step " << start_step_ << " (global step " << result_.global_step << ")";
  if (steps_done_before_ > 0) {
    log_ << ": the previous launch had done " << steps_done_before_ << " steps, "
         << std::max<int64_t>(0, steps_done_before_ - result_.global_step) << " are redone";
  }
  log_ << "\n";
}

void TrainingLoop::initialise_from(const std::string& given) {
  const std::string checkpoint = resolve_checkpoint_dir(given);
  const CheckpointMeta saved_meta = read_checkpoint_meta(checkpoint);
  const Config saved = saved_config(saved_meta, checkpoint);
  // The architecture must agree; dropout acts only in training and may be chosen afresh.
  auto architecture = [](hds::config::ModelConfig model) {
    model.clear_stage_dropout();
    model.clear_head_dropout();
    return model;
  };
  const hds::config::ModelConfig theirs = architecture(saved.model());
  const hds::config::ModelConfig ours = architecture(config_.model());
  if (!google::protobuf::util::MessageDifferencer::Equals(theirs, ours)) {
    throw CheckpointError("--init-from: " + checkpoint +
                          " holds a model of another architecture than this run's model block (" +
                          theirs.ShortDebugString() + " against " + ours.ShortDebugString() + ")");
  }
  load_checkpoint(checkpoint, model_, nullptr);
  log_ << "initialised from " << fs::canonical(checkpoint).string() << " (its epoch "
       << saved_meta.completed_epochs() << ", global step " << saved_meta.global_step()
       << "): a new schedule from epoch 1\n";
}

int64_t TrainingLoop::steps_done_by_previous_launch() const {
  return hds::common::most_steps_done(
      hds::common::ProgressTable(hds::common::progress_table_dir(config_.train().output_dir())),
      world_.size(), [this](const hds::common::RankProgress& record) {
        return record.instance != world_.instance();
      });
}

void TrainingLoop::connect_ranks() {
  sync_ = GradientSync::create(world_, model_->parameters(), config_.distributed(), device_);
  sync_to_abort_ = sync_.get();
  // Parameters and BatchNorm buffers start equal on every rank; the statistics then stay per
  // rank (docs/design.md §5).
  std::vector<torch::Tensor> state = model_->parameters();
  for (const auto& buffer : model_->buffers()) state.push_back(buffer);
  {
    torch::NoGradGuard no_grad;
    sync_->broadcast_from_root(state);
  }
  log_ << "distributed: " << world_.size() << " ranks, " << sync_->backend_name()
       << " gradient sync in " << sync_->bucket_count() << " buckets\n";
}

std::string TrainingLoop::save_checkpoint(int completed_epochs, int step_in_epoch,
                                          const EpochSchedule& next) {
  if (!world_.is_root()) return "";
  CheckpointMeta meta;
  meta.set_completed_epochs(completed_epochs);
  meta.set_step_in_epoch(step_in_epoch);
  meta.set_global_step(result_.global_step);
  for (double w : next.seg_weights) meta.add_seg_head_weights(w);
  for (double w : next.cls_weights) meta.add_cls_head_weights(w);
  meta.set_learning_rate(next.learning_rate);
  meta.set_cpu_rng_state(cpu_rng_state());
  meta.set_config_text(hds::config::to_text(config_));
  *meta.mutable_best_dice() = result_.best_dice;
  *meta.mutable_best_accuracy() = result_.best_accuracy;
  *meta.mutable_last_validation() = result_.last_validation;
  meta.set_last_loss(result_.last_loss);
  meta.set_data_mean(dataset_.mean);
  meta.set_data_std(dataset_.std);
  watchdog_->set_activity(RankActivity::checkpointing);
  const auto save_start = Clock::now();
  result_.last_checkpoint = store_->save(model_, *optimizer_, meta);
  for (TrainingObserver* observer : options_.observers) {
    observer->on_checkpoint(seconds_since(save_start));
  }
  store_->prune(config_.train().keep_checkpoints());
  log_ << "checkpoint " << result_.last_checkpoint << "\n";
  checkpointed_step_ = result_.global_step;
  return result_.last_checkpoint;
}

void TrainingLoop::train_step(int epoch, int step, const EpochSchedule& schedule) {
  const auto step_start = Clock::now();
  watchdog_->step_started(epoch, step + 1, result_.global_step + 1);
  hds::transport::PatchBatch batch;
  try {
    batch = source_->batch(epoch, step);
  } catch (const std::exception& e) {
    // A data service that died (or a film that cannot be read) loses no training: rank 0
    // checkpoints the steps done so far before the error ends the run.
    if (world_.is_root() && result_.global_step > checkpointed_step_) {
      log_ << "data source failed: " << e.what() << "\n";
      std::lock_guard<std::timed_mutex> state(state_mutex_);
      save_checkpoint(epoch - 1, step, schedule);
    }
    throw;
  }
  const double data_wait = seconds_since(step_start);
  watchdog_->set_activity(RankActivity::computing);
  LossTerms terms;
  if (lone_patch_without_statistics(batch)) {
    if (!warned_lone_patch_) {
      log_ << "warning: step " << step + 1 << " of epoch " << epoch << " gives this rank a single "
           << batch.rows << "x" << batch.cols
           << " patch, whose deepest maps are 1x1: BatchNorm cannot train on one value a "
              "channel, so the patch sits out its step (so in every such step)\n";
      warned_lone_patch_ = true;
    }
    batch.count = 0;
  }
  // This rank's gradient counts by its share of the step's patches (the last step of an epoch
  // may leave a rank fewer, or none).
  const int64_t step_patches = world_.sum(batch.count, "step patch count");
  if (step_patches == 0) {
    // No rank has a patch to learn from: the step passes without an update.
    ++result_.global_step;
    position_ = {epoch - 1, step + 1};
    watchdog_->step_finished();
    return;
  }
  std::unique_lock<std::timed_mutex> state(state_mutex_);
  if (world_.is_root()) remember_step_start(epoch, step);
  double sync_wait = 0;
  double gradient_norm = 0;
  StepPhases phases;
  phases.forward_and_backward = [&] {
    if (batch.count == 0) return;
    const auto tensors = to_tensors(batch, device_);
    terms = forward_and_loss(model_, tensors.images, tensors.masks, tensors.labels, config_.loss(),
                             schedule.seg_weights, schedule.cls_weights, compute_);
    const std::string problem = nonfinite_loss_problem(
        terms, epoch, step + 1, result_.global_step + 1, result_.last_checkpoint);
    if (!problem.empty()) {
      // Reported first, so that the metrics show the bad value before the run ends.
      for (TrainingObserver* observer : options_.observers) {
        observer->on_nonfinite_loss(terms.seg_weighted_sum + terms.cls_weighted_sum);
      }
      throw NonFiniteLossError(problem);
    }
    terms.total.backward();
  };
  phases.around_sync_wait = [&](const std::function<void()>& wait) {
    const auto sync_start = Clock::now();
    state.unlock();  // waiting for the other ranks
    wait();
    state.lock();
    sync_wait = seconds_since(sync_start);
  };
  if (!options_.observers.empty()) {
    // Only for reporting: one pass over the gradients and a device sync.
    phases.before_update = [&] { gradient_norm = l2_norm_of_gradients(*model_); };
  }
  run_optimisation_step(*optimizer_, sync_.get(),
                        static_cast<double>(batch.count) / static_cast<double>(step_patches),
                        phases);
  ++result_.global_step;
  result_.last_loss = terms.seg_weighted_sum + terms.cls_weighted_sum;
  position_ = {epoch - 1, step + 1};
  step_start_.under_way = false;
  state.unlock();
  watchdog_->step_finished();
  if (!options_.observers.empty()) {
    StepReport report;
    report.epoch = epoch;
    report.step = step + 1;
    report.steps_per_epoch = steps_per_epoch_;
    report.global_step = result_.global_step;
    report.patches = batch.count;
    report.loss = result_.last_loss;
    report.seg_loss = terms.seg_weighted_sum;
    report.cls_loss = terms.cls_weighted_sum;
    report.job_patches = static_cast<int>(step_patches);
    report.heads = terms.heads;
    report.seg = terms.seg;
    report.cls = terms.cls;
    report.learning_rate = schedule.learning_rate;
    report.seg_weights = schedule.seg_weights;
    report.cls_weights = schedule.cls_weights;
    report.seconds = seconds_since(step_start);
    report.data_wait_seconds = data_wait;
    report.sync_wait_seconds = sync_wait;
    report.gradient_norm = gradient_norm;
    if (const auto memory = device_memory(device_)) {
      report.device_allocated_bytes = memory->allocated_bytes;
      report.device_reserved_bytes = memory->reserved_bytes;
    }
    for (TrainingObserver* observer : options_.observers) observer->on_step(report);
  }
}

void TrainingLoop::remember_step_start(int epoch, int step) {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> buffers = model_->buffers();
  step_start_.under_way = true;
  step_start_.position = {epoch - 1, step};
  step_start_.rng_state = cpu_rng_state();
  step_start_.float_buffers = flatten_buffers(buffers, true);
  step_start_.other_buffers = flatten_buffers(buffers, false);
}

void TrainingLoop::checkpoint_overdue_stop() {
  if (overdue_handled_.exchange(true)) return;
  std::ostringstream outcome;
  const auto wait =
      std::chrono::duration<double>(config_.distributed().stop_checkpoint_seconds() / 2);
  std::unique_lock<std::timed_mutex> state(state_mutex_, std::defer_lock);
  if (!state.try_lock_for(wait)) {
    outcome << "no checkpoint: rank 0 was still " << activity_name(watchdog_->snapshot().activity)
            << " after " << std::chrono::duration<double>(wait).count()
            << " s; resume from the latest checkpoint";
  } else {
    Position position = position_;
    if (step_start_.under_way) {
      // The step stuck in its gradient sync is redone on resume: undo what its forward changed.
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> buffers = model_->buffers();
      restore_buffers(buffers, step_start_.float_buffers, true);
      restore_buffers(buffers, step_start_.other_buffers, false);
      set_cpu_rng_state(step_start_.rng_state);
      position = step_start_.position;
    }
    if (result_.global_step == checkpointed_step_) {
      outcome << "the last completed step (global step " << result_.global_step
              << ") is checkpointed already: " << result_.last_checkpoint;
    } else {
      const int next = std::min(position.completed_epochs + 1, config_.train().epochs());
      try {
        const std::string dir = save_checkpoint(position.completed_epochs, position.step_in_epoch,
                                                epoch_schedule(config_, next));
        outcome << "checkpoint of the last completed step (global step " << result_.global_step
                << "): " << dir;
      } catch (const std::exception& e) {
        outcome << "no checkpoint: " << e.what();
      }
    }
  }
  std::cerr << (world_.size() > 1 ? world_.describe() + ": " : std::string()) +
                   "the stop is overdue (SIGUSR2): " + outcome.str() + "; ending the job\n"
            << std::flush;
  world_.abort(hds::common::kExitStopped);
}

bool TrainingLoop::validation_due(int epoch) const {
  const auto& train = config_.train();
  return world_.is_root() && epoch >= train.validate_from() &&
         (epoch - train.validate_from()) % train.validate_every() == 0 && !dataset_.val.empty();
}

TrainingLoop::Improvement TrainingLoop::validate(int epoch) {
  // With its own BatchNorm statistics; the other ranks wait in the next collective.
  watchdog_->set_activity(RankActivity::validating);
  const auto evaluation = evaluate(model_, dataset_.val, config_.loss(), device_);
  result_.last_validation = to_validation_result(epoch, evaluation);
  // Ties go to the later epoch, as in the reference.
  Improvement improved;
  improved.dice = !result_.best_dice.has_epoch() || evaluation.dice >= result_.best_dice.dice();
  improved.accuracy =
      !result_.best_accuracy.has_epoch() || evaluation.accuracy >= result_.best_accuracy.accuracy();
  if (improved.dice) result_.best_dice = result_.last_validation;
  if (improved.accuracy) result_.best_accuracy = result_.last_validation;
  for (TrainingObserver* observer : options_.observers) {
    observer->on_validation(result_.last_validation, result_.best_dice);
  }
  log_ << "validation epoch " << epoch << ": dice " << std::setprecision(4) << evaluation.dice
       << " accuracy " << evaluation.accuracy << " auc " << evaluation.auc << " ("
       << evaluation.films << " films, " << evaluation.films_with_mass << " with masses)"
       << (improved.dice ? " [best dice]" : "") << (improved.accuracy ? " [best accuracy]" : "")
       << "\n";
  return improved;
}

bool TrainingLoop::stop_agreed() const {
  return world_.any((options_.stop_requested && options_.stop_requested()) ||
                        (options_.stop_at_step > 0 && result_.global_step >= options_.stop_at_step),
                    "stop agreement");
}

FitResult TrainingLoop::finish(bool finished, bool leave_together) {
  result_.finished = finished;
  watchdog_->set_activity(RankActivity::finishing);
  if (world_.is_root()) {
    write_summary(fs::path(config_.train().output_dir()) / "summary.json", result_);
  }
  // Ranks leave a stop together: a launcher ends the whole job when the first rank exits with
  // 75, which must not happen while rank 0 still writes the checkpoint.
  if (leave_together) world_.barrier("leaving together");
  return result_;
}

FitResult TrainingLoop::run() {
  const int epochs = config_.train().epochs();
  model_->train();
  for (int epoch = start_epoch_; epoch <= epochs; ++epoch) {
    const EpochSchedule schedule = epoch_schedule(config_, epoch);
    set_learning_rate(*optimizer_, schedule.learning_rate);
    const int first_step = epoch == start_epoch_ ? start_step_ : 0;
    for (int step = first_step; step < steps_per_epoch_; ++step) {
      train_step(epoch, step, schedule);
      // Every rank stops at the same step when any rank was asked to.
      if (stop_agreed() && step + 1 != steps_per_epoch_) {
        {
          std::lock_guard<std::timed_mutex> state(state_mutex_);
          save_checkpoint(epoch - 1, step + 1, schedule);
        }
        log_ << "stopped at epoch " << epoch << ", step " << step + 1 << " on request\n";
        return finish(false, true);
      }
    }
    Improvement improved;
    {
      std::lock_guard<std::timed_mutex> state(state_mutex_);
      result_.completed_epochs = epoch;
      if (validation_due(epoch)) improved = validate(epoch);
    }
    const bool stop = stop_agreed();
    {
      std::lock_guard<std::timed_mutex> state(state_mutex_);
      if (improved.dice || improved.accuracy || stop || epoch == epochs ||
          epoch % config_.train().checkpoint_every() == 0) {
        // The schedule stored is the next epoch's: what a resumed run continues with.
        const auto dir =
            save_checkpoint(epoch, 0, epoch_schedule(config_, std::min(epoch + 1, epochs)));
        if (improved.dice) store_->link("best-dice", dir);
        if (improved.accuracy) store_->link("best-accuracy", dir);
      }
      position_ = {epoch, 0};
    }
    if (stop && epoch < epochs) {
      log_ << "stopped after epoch " << epoch << " on request\n";
      return finish(false, true);
    }
  }
  return finish(true, false);
}

FitResult fit(const Config& config, const FitOptions& options) {
  return TrainingLoop(config, options).run();
}

}  // namespace hds::trainer

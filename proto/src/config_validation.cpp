// Validation: value ranges and cross-field rules, each problem reported on the line (or the
// --set override) where the user wrote the field it blames.
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <tuple>
#include <utility>

#include "config_internal.h"
#include "hds/common/architecture.h"
#include "hds/common/job_id.h"
#include "hds/config/config.h"

namespace hds::config {
namespace detail {
namespace {

namespace pb = google::protobuf;
using hds::common::kHeadCount;
using hds::common::kMaxBlocksPerStage;
using hds::common::kMaxWidth;
using hds::common::kTrunkStages;
using pb::TextFormat;

// ---------------------------------------------------------------------------------------------
// Field paths such as "data.patch_rows" or "model.widths[3]".

struct PathStep {
  const pb::FieldDescriptor* field;
  int index;  // element of a repeated field; -1 for a singular field or a whole repeated one
};

// Resolves `path` against Config's schema; empty when it names no field.
std::vector<PathStep> parse_path(const std::string& path) {
  std::vector<PathStep> steps;
  const pb::Descriptor* descriptor = Config::descriptor();
  std::stringstream components(path);
  std::string component;
  while (std::getline(components, component, '.')) {
    if (descriptor == nullptr) return {};
    int index = -1;
    const auto bracket = component.find('[');
    if (bracket != std::string::npos) {
      index = std::atoi(component.c_str() + bracket + 1);
      component.resize(bracket);
    }
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(component);
    if (field == nullptr) return {};
    steps.push_back({field, index});
    descriptor = field->message_type();
  }
  return steps;
}

// The text-format value at `path` in `config` ("500", "\"cuda:1\"", "MULTITASK_LAST_HEAD"), or ""
// where the path names a message or a whole repeated field.
std::string value_text(const Config& config, const std::string& path) {
  const std::vector<PathStep> steps = parse_path(path);
  if (steps.empty()) return "";
  const pb::Message* message = &config;
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
    const pb::Reflection* reflection = message->GetReflection();
    message = steps[i].index >= 0
                  ? &reflection->GetRepeatedMessage(*message, steps[i].field, steps[i].index)
                  : &reflection->GetMessage(*message, steps[i].field);
  }
  const PathStep& last = steps.back();
  if (last.field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) return "";
  if (last.field->is_repeated() &&
      (last.index < 0 || last.index >= message->GetReflection()->FieldSize(*message, last.field))) {
    return "";
  }
  std::string text;
  TextFormat::PrintFieldValueToString(*message, last.field, last.index, &text);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Locating a problem in the text or the overrides.

// The 0-based line at which the text set `path`, or -1.
int line_of(const TextFormat::ParseInfoTree* tree, const std::string& path) {
  const std::vector<PathStep> steps = parse_path(path);
  if (steps.empty()) return -1;
  for (std::size_t i = 0; i + 1 < steps.size() && tree != nullptr; ++i) {
    tree = tree->GetTreeForNested(steps[i].field,
                                  steps[i].field->is_repeated() ? std::max(steps[i].index, 0) : -1);
  }
  if (tree == nullptr) return -1;
  const PathStep& last = steps.back();
  if (!last.field->is_repeated()) return tree->GetLocation(last.field, -1).line;
  // A list written as "[a, b, c]" is recorded once, at its first element's index; so the
  // element's line is that of the nearest recorded value at or before it.
  for (int k = std::max(last.index, 0); k >= 0; --k) {
    const int line = tree->GetLocation(last.field, k).line;
    if (line >= 0) return line;
  }
  return -1;
}

// One way to report a problem: the field to name, and what is wrong with it.
struct Blame {
  std::string path;
  std::string problem;
};

// A validation problem. Some involve two fields (patch larger than image): it is reported on the
// first of its blames whose value the user wrote, so the message points at the user's line.
struct Issue {
  std::vector<Blame> blames;
};

struct Located {
  int rank;  // 0: a line of the text, 1: an override, 2: nowhere (a default)
  int line;
  std::string message;
};

bool path_within(const std::string& path, const std::string& prefix) {
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

std::string describe(const Config& config, const Blame& blame) {
  const std::string value = value_text(config, blame.path);
  return blame.path + (value.empty() ? "" : " = " + value) + ": " + blame.problem;
}

Located locate(const Config& config, const Origin* origin, const Issue& issue) {
  if (origin == nullptr) return {2, 0, describe(config, issue.blames.front())};
  for (const Blame& blame : issue.blames) {
    // The last override of a field wins over the text, so it is the one to name.
    for (auto it = origin->overrides.rbegin(); it != origin->overrides.rend(); ++it) {
      if (path_within(blame.path, it->path)) {
        return {1, 0, "--set " + it->text + ": " + describe(config, blame)};
      }
    }
    const int line = line_of(origin->tree, blame.path);
    if (line >= 0) {
      return {0, line,
              origin->source + ":" + std::to_string(line + 1) + ": " + describe(config, blame)};
    }
  }
  return {2, 0, origin->source + ": " + describe(config, issue.blames.front())};
}

// ---------------------------------------------------------------------------------------------
// Validation.

class Validator {
 public:
  explicit Validator(const Config& config) : config_(config) {}

  // Records `problem` on `path` unless `ok`.
  void require(bool ok, const std::string& path, const std::string& problem) {
    if (!ok) issues_.push_back({{{path, problem}}});
  }
  // A problem between two fields, reported on whichever the user wrote.
  void require_either(bool ok, Blame first, Blame second) {
    if (!ok) issues_.push_back({{std::move(first), std::move(second)}});
  }

  void at_least(long long value, long long minimum, const std::string& path) {
    require(value >= minimum, path, "must be at least " + std::to_string(minimum));
  }
  // Written so that NaN fails every check.
  void positive(double value, const std::string& path) {
    require(value > 0 && std::isfinite(value), path, "must be positive");
  }
  void non_negative(double value, const std::string& path) {
    require(value >= 0 && std::isfinite(value), path, "must be non-negative");
  }
  void in_half_open_unit(double value, const std::string& path) {  // [0, 1)
    require(value >= 0 && value < 1, path, "must be in [0, 1)");
  }
  void in_closed_unit(double value, const std::string& path) {  // [0, 1]
    require(value >= 0 && value <= 1, path, "must be in [0, 1]");
  }
  void in_unit_excluding_zero(double value, const std::string& path) {  // (0, 1]
    require(value > 0 && value <= 1, path, "must be in (0, 1]");
  }
  void multiple_of_128(int value, const std::string& path) {
    require(hds::common::valid_input_side(value), path,
            "must be a positive multiple of " + std::to_string(hds::common::kInputMultiple));
  }
  void entries(int size, int expected, const std::string& path, const std::string& why) {
    require(size == expected, path,
            "must have " + std::to_string(expected) + " entries (" + why + "), has " +
                std::to_string(size));
  }

  void check_model();
  void check_loss();
  void check_optimizer();
  void check_data();
  void check_data_service();
  void check_train();
  void check_distributed();
  void check_monitoring();

  const std::vector<Issue>& issues() const { return issues_; }

 private:
  const Config& config_;
  std::vector<Issue> issues_;
};

std::string element(const std::string& path, int index) {
  return path + "[" + std::to_string(index) + "]";
}

void Validator::check_model() {
  const ModelConfig& model = config_.model();
  at_least(model.in_channels(), 1, "model.in_channels");

  entries(model.widths_size(), kTrunkStages, "model.widths", "one per trunk stage");
  for (int i = 0; i < model.widths_size(); ++i) {
    require(model.widths(i) > 0 && model.widths(i) <= kMaxWidth, element("model.widths", i),
            "must be in 1.." + std::to_string(kMaxWidth));
  }
  if (model.widths_size() == kTrunkStages) {
    // The decoder mirrors the encoder: skip fusion concatenates equal widths.
    for (int k = 0; k < kTrunkStages / 2; ++k) {
      const int mirror = kTrunkStages - 1 - k;
      require(model.widths(mirror) == model.widths(k), element("model.widths", mirror),
              "must equal model.widths[" + std::to_string(k) + "] (" +
                  std::to_string(model.widths(k)) + "): the widths must be symmetric");
    }
  }
  require(model.blocks_per_stage() >= 1 && model.blocks_per_stage() <= kMaxBlocksPerStage,
          "model.blocks_per_stage", "must be in 1.." + std::to_string(kMaxBlocksPerStage));

  entries(model.stage_dropout_size(), kTrunkStages, "model.stage_dropout", "one per trunk stage");
  for (int i = 0; i < model.stage_dropout_size(); ++i) {
    in_half_open_unit(model.stage_dropout(i), element("model.stage_dropout", i));
  }
  entries(model.head_dropout_size(), kHeadCount, "model.head_dropout", "one per head");
  for (int i = 0; i < model.head_dropout_size(); ++i) {
    in_half_open_unit(model.head_dropout(i), element("model.head_dropout", i));
  }

  require(model.heads_size() > 0, "model.heads", "must name at least one head");
  for (int i = 0; i < model.heads_size(); ++i) {
    const std::string path = element("model.heads", i);
    require(model.heads(i) >= 0 && model.heads(i) < kHeadCount, path,
            "must be a head index in 0..5");
    if (i > 0) {
      require(model.heads(i) != model.heads(i - 1), path, "is a duplicate");
      require(model.heads(i) >= model.heads(i - 1), path, "heads must be in ascending order");
    }
  }
}

void Validator::check_loss() {
  const LossConfig& loss = config_.loss();
  non_negative(loss.alpha(), "loss.alpha");
  non_negative(loss.sparsity_mu(), "loss.sparsity_mu");
  entries(loss.seg_head_weights_size(), kHeadCount, "loss.seg_head_weights", "one per head");
  for (int i = 0; i < loss.seg_head_weights_size(); ++i) {
    non_negative(loss.seg_head_weights(i), element("loss.seg_head_weights", i));
  }
  entries(loss.cls_head_weights_size(), kHeadCount, "loss.cls_head_weights", "one per head");
  for (int i = 0; i < loss.cls_head_weights_size(); ++i) {
    non_negative(loss.cls_head_weights(i), element("loss.cls_head_weights", i));
  }
  in_unit_excluding_zero(loss.seg_final_decay(), "loss.seg_final_decay");
  in_unit_excluding_zero(loss.cls_final_decay(), "loss.cls_final_decay");
  positive(loss.dice_weight(), "loss.dice_weight");

  if (loss.variant() == LossConfig::MULTITASK_LAST_HEAD) {
    const auto& heads = config_.model().heads();
    const bool has_last = std::find(heads.begin(), heads.end(), kHeadCount - 1) != heads.end();
    require_either(has_last, {"loss.variant", "needs head 5 in model.heads"},
                   {"model.heads", "must contain head 5 for loss.variant MULTITASK_LAST_HEAD"});
  }
}

void Validator::check_optimizer() {
  const OptimizerConfig& optimizer = config_.optimizer();
  positive(optimizer.learning_rate(), "optimizer.learning_rate");
  in_half_open_unit(optimizer.momentum(), "optimizer.momentum");
  non_negative(optimizer.weight_decay(), "optimizer.weight_decay");
  in_half_open_unit(optimizer.adam_beta1(), "optimizer.adam_beta1");
  in_half_open_unit(optimizer.adam_beta2(), "optimizer.adam_beta2");
  in_unit_excluding_zero(optimizer.lr_gamma(), "optimizer.lr_gamma");
  positive(optimizer.poly_power(), "optimizer.poly_power");
  at_least(optimizer.warmup_epochs(), 0, "optimizer.warmup_epochs");
  require(optimizer.warmup_epochs() == 0 || optimizer.warmup_epochs() < config_.train().epochs(),
          "optimizer.warmup_epochs",
          "must be fewer than train.epochs (" + std::to_string(config_.train().epochs()) + ")");
  for (int i = 0; i < optimizer.lr_milestones_size(); ++i) {
    const std::string path = element("optimizer.lr_milestones", i);
    require(optimizer.lr_milestones(i) > 0, path, "must be a positive epoch");
    if (i > 0) {
      require(optimizer.lr_milestones(i) > optimizer.lr_milestones(i - 1), path,
              "milestones must be strictly ascending");
    }
  }
}

void Validator::check_data() {
  const DataConfig& data = config_.data();
  const DataSource* source = find_data_source(data.source());
  require(source != nullptr, "data.source", "must be " + data_source_names());
  if (source && source->reads_files) {
    require_either(!data.root().empty(),
                   {"data.root", "must name the dataset folder for source " + data.source()},
                   {"data.source", "needs data.root (the dataset folder)"});
  }
  // Text and --set values are checked by the parser; this catches configs built in code.
  require(DataConfig::BadSamplePolicy_IsValid(data.on_bad_sample()), "data.on_bad_sample",
          "must be STOP or SKIP");
  require(DataConfig::MiasOtherAbnormalities_IsValid(data.mias_other_abnormalities()),
          "data.mias_other_abnormalities", "must be NO_MASS or EXCLUDE");
  require(data.folds() == 0 || data.folds() >= 3, "data.folds",
          "must be 0 (no folds: every film trains) or at least 3 (train, validation, test)");
  if (data.folds() > 0) {
    require(data.fold() >= 0 && data.fold() < data.folds(), "data.fold",
            "must be in 0.." + std::to_string(data.folds() - 1) + " (data.folds - 1)");
  }
  at_least(data.phantom().train_count(), 1, "data.phantom.train_count");
  at_least(data.phantom().val_count(), 1, "data.phantom.val_count");
  at_least(data.phantom().test_count(), 0, "data.phantom.test_count");
  const double mass_free = data.phantom().mass_free_share();
  require(mass_free >= 0 && mass_free <= 1, "data.phantom.mass_free_share",
          "must be in [0, 1] (the share of films without a mass)");
  if (source && source->kind == DataSourceKind::phantom && data.phantom().divide_into_folds()) {
    require(data.folds() > 0, "data.phantom.divide_into_folds",
            "needs data.folds >= 3 (the folds to divide the films into)");
  }

  // Whole images are evaluated by the same network as patches, so both need the multiple.
  multiple_of_128(data.image_rows(), "data.image_rows");
  multiple_of_128(data.image_cols(), "data.image_cols");
  at_least(static_cast<long long>(std::min<uint64_t>(data.max_film_pixels(), LLONG_MAX)), 1,
           "data.max_film_pixels");
  // Films are resized to image_rows x image_cols: the same budget bounds what that allocates.
  const uint64_t image_pixels = static_cast<uint64_t>(std::max(data.image_rows(), 0)) *
                                static_cast<uint64_t>(std::max(data.image_cols(), 0));
  require_either(image_pixels <= data.max_film_pixels(),
                 {"data.image_rows", "times data.image_cols is " + std::to_string(image_pixels) +
                                         " pixels: must be at most data.max_film_pixels (" +
                                         std::to_string(data.max_film_pixels()) + ")"},
                 {"data.max_film_pixels", "must be at least data.image_rows x data.image_cols (" +
                                              std::to_string(image_pixels) + ")"});
  multiple_of_128(data.patch_rows(), "data.patch_rows");
  multiple_of_128(data.patch_cols(), "data.patch_cols");
  require_either(data.patch_rows() <= data.image_rows(),
                 {"data.patch_rows",
                  "must be at most data.image_rows (" + std::to_string(data.image_rows()) + ")"},
                 {"data.image_rows",
                  "must be at least data.patch_rows (" + std::to_string(data.patch_rows()) + ")"});
  require_either(data.patch_cols() <= data.image_cols(),
                 {"data.patch_cols",
                  "must be at most data.image_cols (" + std::to_string(data.image_cols()) + ")"},
                 {"data.image_cols",
                  "must be at least data.patch_cols (" + std::to_string(data.patch_cols()) + ")"});

  in_half_open_unit(data.blank_threshold(), "data.blank_threshold");
  in_half_open_unit(data.breast_threshold(), "data.breast_threshold");
  in_closed_unit(data.flip_probability(), "data.flip_probability");
  in_closed_unit(data.mass_centre_probability(), "data.mass_centre_probability");
  require(std::isfinite(data.mean()), "data.mean", "must be finite");
  non_negative(data.std(), "data.std");
  // mean = std = 0 asks for computed statistics; a given mean needs a given std to divide by.
  if (data.mean() != 0 && data.std() == 0) {
    require_either(false, {"data.std", "must be positive when data.mean is given"},
                   {"data.mean", "needs a positive data.std"});
  }
}

void Validator::check_data_service() {
  const DataConfig& data = config_.data();
  require(data.service_timeout_seconds() > 0 && data.service_timeout_seconds() <= 3600,
          "data.service_timeout_seconds", "must be in (0, 3600] seconds");
  non_negative(data.service_reconnect_seconds(), "data.service_reconnect_seconds");
  // A Unix socket address holds at most 107 bytes of path.
  require(data.service_socket().size() <= 107, "data.service_socket",
          "must be at most 107 bytes long (a Unix socket path)");
  const std::string& job = data.service_job_id();
  // Empty is allowed here: no data service.
  require(job.empty() || hds::common::is_valid_job_id(job), "data.service_job_id",
          std::string("must be ") + hds::common::kJobIdRule);
  if (!data.service_socket().empty()) {
    require_either(!job.empty(),
                   {"data.service_job_id",
                    "must be set with data.service_socket (the service's "
                    "--job-id)"},
                   {"data.service_socket", "needs data.service_job_id (the service's --job-id)"});
  }
}

void Validator::check_train() {
  const TrainConfig& train = config_.train();
  at_least(train.epochs(), 1, "train.epochs");
  at_least(train.batch_size(), 1, "train.batch_size");
  at_least(train.validate_every(), 1, "train.validate_every");
  at_least(train.validate_from(), 1, "train.validate_from");
  at_least(train.checkpoint_every(), 1, "train.checkpoint_every");
  at_least(train.keep_checkpoints(), 1, "train.keep_checkpoints");
  require(!train.output_dir().empty(), "train.output_dir", "must not be empty");
  require(train.device() == "cpu" || train.device() == "cuda", "train.device",
          "must be \"cpu\" or \"cuda\"");
  at_least(train.threads(), 0, "train.threads");
  at_least(train.log_every_steps(), 1, "train.log_every_steps");
}

void Validator::check_distributed() {
  const DistributedConfig& distributed = config_.distributed();
  // A bucket below 1 KiB only adds launches; above 1 GiB no overlap is left.
  require(distributed.bucket_megabytes() >= 1.0 / 1024 && distributed.bucket_megabytes() <= 1024,
          "distributed.bucket_megabytes", "must be in [1/1024, 1024] MiB");
  require(!(distributed.backend() == DistributedConfig::NCCL && config_.train().device() != "cuda"),
          "distributed.backend", "NCCL needs train.device = \"cuda\"");
  non_negative(distributed.collective_timeout_seconds(), "distributed.collective_timeout_seconds");
  positive(distributed.first_step_timeout_seconds(), "distributed.first_step_timeout_seconds");
  positive(distributed.stop_grace_seconds(), "distributed.stop_grace_seconds");
  positive(distributed.stop_checkpoint_seconds(), "distributed.stop_checkpoint_seconds");
}

void Validator::check_monitoring() {
  const MonitoringConfig& monitoring = config_.monitoring();
  // Ports below 1024 need privileges; each local rank adds one to the port (checked by the
  // trainer, which knows how many ranks share its node).
  require(monitoring.metrics_port() == 0 ||
              (monitoring.metrics_port() >= 1024 && monitoring.metrics_port() <= 65535),
          "monitoring.metrics_port", "must be 0 (no metrics) or a port in 1024..65535");
  require(!monitoring.metrics_address().empty(), "monitoring.metrics_address",
          "must not be empty (127.0.0.1: this machine only; 0.0.0.0: every interface)");
  require(monitoring.data_service_port_offset() >= 1 &&
              monitoring.metrics_port() + monitoring.data_service_port_offset() <= 65535,
          "monitoring.data_service_port_offset",
          "must be at least 1 and keep metrics_port + offset within 65535");
  require(monitoring.linger_seconds() >= 0 && monitoring.linger_seconds() <= 600,
          "monitoring.linger_seconds", "must be in 0..600 s");
}

}  // namespace

void validate_with_origin(const Config& config, const Origin* origin) {
  Validator validator(config);
  validator.check_model();
  validator.check_loss();
  validator.check_optimizer();
  validator.check_data();
  validator.check_data_service();
  validator.check_train();
  validator.check_distributed();
  validator.check_monitoring();
  if (validator.issues().empty()) return;

  std::vector<Located> located;
  for (const Issue& issue : validator.issues()) located.push_back(locate(config, origin, issue));
  std::stable_sort(located.begin(), located.end(), [](const Located& a, const Located& b) {
    return std::tie(a.rank, a.line) < std::tie(b.rank, b.line);
  });
  std::string message;
  for (const Located& l : located) message += (message.empty() ? "" : "\n") + l.message;
  throw ConfigError(message);
}

}  // namespace detail

void validate(const Config& config) { detail::validate_with_origin(config, nullptr); }

const std::vector<DataSource>& data_sources() {
  static const std::vector<DataSource> sources = {
      {DataSourceKind::phantom, "phantom", /*reads_files=*/false, /*patient_folds=*/false},
      {DataSourceKind::folder, "folder", true, false},
      {DataSourceKind::mini_mias, "mini-mias", true, true},
      {DataSourceKind::inbreast, "inbreast", true, true}};
  return sources;
}

const DataSource* find_data_source(const std::string& name) {
  for (const DataSource& source : data_sources()) {
    if (name == source.name) return &source;
  }
  return nullptr;
}

std::string data_source_names() {
  const std::vector<DataSource>& sources = data_sources();
  std::string names;
  for (size_t i = 0; i < sources.size(); ++i) {
    names += (i == 0                    ? ""
              : i + 1 == sources.size() ? " or "
                                        : ", ") +
             std::string("\"") + sources[i].name + "\"";
  }
  return names;
}

bool divides_into_folds(const DataConfig& data) {
  const DataSource* source = find_data_source(data.source());
  if (source == nullptr) return false;
  // Phantoms are dealt into fixed splits unless asked to stand in for a patient-fold source.
  return source->patient_folds ||
         (source->kind == DataSourceKind::phantom && data.phantom().divide_into_folds());
}

}  // namespace hds::config

// The configuration loader: text-format parsing with line numbers, --set overrides, the paper's
// default lists and validation. Errors name the source, the line and the field path.
#include "hds/config/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <tuple>
#include <utility>

namespace hds::config {
namespace {

namespace pb = google::protobuf;
using pb::TextFormat;

// ---------------------------------------------------------------------------------------------
// The paper's lists (DESIGN §3). proto2 cannot give repeated fields defaults, so they live here.

constexpr int kStages = 11;          // trunk stages, encoder to decoder
constexpr int kHeads = 6;            // heads 0 (coarsest) .. 5 (full resolution)
constexpr int kPatchMultiple = 128;  // five poolings plus the heads' two more: 2^7

void fill_paper_lists(Config& config) {
  ModelConfig& model = *config.mutable_model();
  if (model.widths_size() == 0) {
    for (int w : {16, 32, 64, 128, 128, 128, 128, 128, 64, 32, 16}) model.add_widths(w);
  }
  if (model.stage_dropout_size() == 0) {
    for (float p : {.2f, .2f, .2f, .5f, .5f, .5f, .5f, .5f, .2f, .2f, .2f}) {
      model.add_stage_dropout(p);
    }
  }
  if (model.head_dropout_size() == 0) {
    for (float p : {.5f, .5f, .5f, .2f, .2f, .2f}) model.add_head_dropout(p);
  }
  if (model.heads_size() == 0) {
    for (int h = 0; h < kHeads; ++h) model.add_heads(h);
  }
  LossConfig& loss = *config.mutable_loss();
  if (loss.seg_head_weights_size() == 0) {
    for (double w : {3.5, 3.0, 2.5, 2.0, 1.5, 1.0}) loss.add_seg_head_weights(w);
  }
  if (loss.cls_head_weights_size() == 0) {
    for (double w : {3.5, 3.0, 2.5, 2.0, 1.5, 1.0}) loss.add_cls_head_weights(w);
  }
  OptimizerConfig& optimizer = *config.mutable_optimizer();
  if (optimizer.lr_milestones_size() == 0) {
    for (int s : {1000, 1800, 2400, 2410}) optimizer.add_lr_milestones(s);
  }
}

// Marks every singular field as set (to its current, possibly default, value), recursively. A
// loaded config is then self-contained: it prints every field, and two configs with the same
// values compare equal whether a value came from a file or from a default.
void set_every_field(pb::Message& message) {
  const pb::Descriptor* descriptor = message.GetDescriptor();
  const pb::Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int k = 0; k < reflection->FieldSize(message, field); ++k) {
          set_every_field(*reflection->MutableRepeatedMessage(&message, field, k));
        }
      }
      continue;
    }
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        set_every_field(*reflection->MutableMessage(&message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&message, field, reflection->GetInt32(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        reflection->SetInt64(&message, field, reflection->GetInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        reflection->SetUInt32(&message, field, reflection->GetUInt32(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        reflection->SetUInt64(&message, field, reflection->GetUInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        reflection->SetFloat(&message, field, reflection->GetFloat(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(&message, field, reflection->GetDouble(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&message, field, reflection->GetBool(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        reflection->SetEnumValue(&message, field, reflection->GetEnumValue(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&message, field, reflection->GetString(message, field));
        break;
    }
  }
}

// The form every loader result has: paper lists filled, every field set.
void complete(Config& config) {
  fill_paper_lists(config);
  set_every_field(config);
}

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
// Where a field's value came from, so that problems can name the line or the override.

struct AppliedOverride {
  std::string path;  // "model.widths"
  std::string text;  // the override as given: "model.widths=[8,8,...]"
};

struct Origin {
  std::string source;                               // file name or other label of the text
  const TextFormat::ParseInfoTree* tree = nullptr;  // field locations in that text
  std::vector<AppliedOverride> overrides;           // in the order applied
};

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
    require(value > 0 && value % kPatchMultiple == 0, path,
            "must be a positive multiple of " + std::to_string(kPatchMultiple));
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

  entries(model.widths_size(), kStages, "model.widths", "one per trunk stage");
  for (int i = 0; i < model.widths_size(); ++i) {
    require(model.widths(i) > 0, element("model.widths", i), "must be positive");
  }
  if (model.widths_size() == kStages) {
    // The decoder mirrors the encoder: skip fusion concatenates equal widths.
    for (int k = 0; k < kStages / 2; ++k) {
      const int mirror = kStages - 1 - k;
      require(model.widths(mirror) == model.widths(k), element("model.widths", mirror),
              "must equal model.widths[" + std::to_string(k) + "] (" +
                  std::to_string(model.widths(k)) + "): the widths must be symmetric");
    }
  }
  at_least(model.blocks_per_stage(), 1, "model.blocks_per_stage");

  entries(model.stage_dropout_size(), kStages, "model.stage_dropout", "one per trunk stage");
  for (int i = 0; i < model.stage_dropout_size(); ++i) {
    in_half_open_unit(model.stage_dropout(i), element("model.stage_dropout", i));
  }
  entries(model.head_dropout_size(), kHeads, "model.head_dropout", "one per head");
  for (int i = 0; i < model.head_dropout_size(); ++i) {
    in_half_open_unit(model.head_dropout(i), element("model.head_dropout", i));
  }

  require(model.heads_size() > 0, "model.heads", "must name at least one head");
  for (int i = 0; i < model.heads_size(); ++i) {
    const std::string path = element("model.heads", i);
    require(model.heads(i) >= 0 && model.heads(i) < kHeads, path, "must be a head index in 0..5");
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
  entries(loss.seg_head_weights_size(), kHeads, "loss.seg_head_weights", "one per head");
  for (int i = 0; i < loss.seg_head_weights_size(); ++i) {
    non_negative(loss.seg_head_weights(i), element("loss.seg_head_weights", i));
  }
  entries(loss.cls_head_weights_size(), kHeads, "loss.cls_head_weights", "one per head");
  for (int i = 0; i < loss.cls_head_weights_size(); ++i) {
    non_negative(loss.cls_head_weights(i), element("loss.cls_head_weights", i));
  }
  in_unit_excluding_zero(loss.seg_final_decay(), "loss.seg_final_decay");
  in_unit_excluding_zero(loss.cls_final_decay(), "loss.cls_final_decay");

  if (loss.variant() == LossConfig::MULTITASK_LAST_HEAD) {
    const auto& heads = config_.model().heads();
    const bool has_last = std::find(heads.begin(), heads.end(), kHeads - 1) != heads.end();
    require_either(has_last, {"loss.variant", "needs head 5 in model.heads"},
                   {"model.heads", "must contain head 5 for loss.variant MULTITASK_LAST_HEAD"});
  }
}

void Validator::check_optimizer() {
  const OptimizerConfig& optimizer = config_.optimizer();
  positive(optimizer.learning_rate(), "optimizer.learning_rate");
  in_half_open_unit(optimizer.momentum(), "optimizer.momentum");
  non_negative(optimizer.weight_decay(), "optimizer.weight_decay");
  in_unit_excluding_zero(optimizer.lr_gamma(), "optimizer.lr_gamma");
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
  const bool reads_files =
      data.source() == "folder" || data.source() == "mini-mias" || data.source() == "inbreast";
  require(data.source() == "phantom" || reads_files, "data.source",
          "must be \"phantom\", \"folder\", \"mini-mias\" or \"inbreast\"");
  if (reads_files) {
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

  // Whole images are evaluated by the same network as patches, so both need the multiple.
  multiple_of_128(data.image_rows(), "data.image_rows");
  multiple_of_128(data.image_cols(), "data.image_cols");
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
  // A Unix socket address holds at most 107 bytes of path.
  require(data.service_socket().size() <= 107, "data.service_socket",
          "must be at most 107 bytes long (a Unix socket path)");
  const std::string& job = data.service_job_id();
  const bool job_characters_ok = std::all_of(job.begin(), job.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  require(job.size() <= 64 && job_characters_ok, "data.service_job_id",
          "must be 1 to 64 characters of letters, digits, '_' and '-'");
  if (!data.service_socket().empty()) {
    require_either(!job.empty(),
                   {"data.service_job_id", "must be set with data.service_socket (the service's "
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
}

// Validates `config`; throws one ConfigError listing every problem, one per line, those with a
// line of the text first (in line order), then overrides, then defaults.
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

// ---------------------------------------------------------------------------------------------
// Parsing.

// Keeps the text-format parser's errors (0-based lines) instead of logging them.
class ErrorList : public pb::io::ErrorCollector {
 public:
  struct Error {
    int line;
    int column;
    std::string message;
  };
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back({line, column, message});
  }
  std::vector<Error> errors;
};

// The field path at (line, column) of `text`, rebuilt from the tokens before it: the parser's
// messages say what is wrong ("Expected integer") but not in which field.
std::string field_path_at(const std::string& text, int line, int column) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  ErrorList ignored;  // the parser reports the same problems
  pb::io::Tokenizer tokenizer(&input, &ignored);
  // As TextFormat's own parser tokenizes.
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_allow_f_after_float(true);
  tokenizer.set_require_space_after_number(false);
  tokenizer.set_allow_multiline_strings(true);
  std::vector<pb::io::Tokenizer::Token> tokens;
  while (tokenizer.Next()) tokens.push_back(tokenizer.current());

  std::vector<std::string> open;  // message fields whose braces enclose the position
  std::string current;            // the last field name before the position
  bool at_end = true;             // the problem is the end of the text (an unclosed brace)
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const pb::io::Tokenizer::Token& token = tokens[i];
    if (std::make_pair(token.line, token.column) >= std::make_pair(line, column)) {
      at_end = false;
      break;
    }
    const std::string next = i + 1 < tokens.size() ? tokens[i + 1].text : "";
    if (token.type == pb::io::Tokenizer::TYPE_IDENTIFIER &&
        (next == ":" || next == "{" || next == "<")) {
      current = token.text;
    } else if (token.text == "{" || token.text == "<") {
      open.push_back(current);
      current.clear();
    } else if ((token.text == "}" || token.text == ">") && !open.empty()) {
      open.pop_back();
      current.clear();
    }
  }
  if (!current.empty() && !at_end) open.push_back(current);
  std::string path;
  for (const std::string& name : open) path += (path.empty() ? "" : ".") + name;
  return path;
}

Config parse_text(const std::string& text, const std::string& source_name,
                  TextFormat::ParseInfoTree* tree) {
  TextFormat::Parser parser;
  ErrorList errors;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(tree);
  Config config;
  if (parser.ParseFromString(text, &config)) return config;

  std::string message;
  for (const ErrorList::Error& error : errors.errors) {
    const std::string path = field_path_at(text, error.line, error.column);
    message += (message.empty() ? "" : "\n") + source_name + ":" + std::to_string(error.line + 1) +
               ":" + std::to_string(error.column + 1) + ": " + (path.empty() ? "" : path + ": ") +
               error.message;
  }
  if (message.empty()) message = source_name + ": not a valid configuration";
  throw ConfigError(message);
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::string text_format_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Applies "a.b.c=value": the target is cleared (a list or message is replaced, not appended to)
// and the value parsed by the text-format parser, so protobuf checks its type.
AppliedOverride apply_override(const std::string& override_text, Config& config) {
  const std::string where = "--set " + override_text + ": ";
  const auto equals = override_text.find('=');
  if (equals == std::string::npos) {
    throw ConfigError(where + "expected field.path=value, e.g. train.epochs=5");
  }
  const std::string path = trim(override_text.substr(0, equals));
  std::string value = trim(override_text.substr(equals + 1));

  // Resolve the path on the schema.
  std::vector<const pb::FieldDescriptor*> fields;
  const pb::Descriptor* descriptor = Config::descriptor();
  std::stringstream components(path);
  std::string component;
  std::string walked;
  while (std::getline(components, component, '.')) {
    if (descriptor == nullptr) {
      throw ConfigError(where + walked + " is not a message, it has no field \"" + component +
                        "\"");
    }
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(component);
    walked += (walked.empty() ? "" : ".") + component;
    if (field == nullptr) {
      throw ConfigError(where + walked + ": no such field (" + descriptor->full_name() +
                        " has no field \"" + component + "\")");
    }
    if (field->is_repeated() && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      throw ConfigError(where + walked + ": repeated messages cannot be overridden");
    }
    fields.push_back(field);
    descriptor = field->message_type();
  }
  if (fields.empty() || path.back() == '.') {
    throw ConfigError(where + "expected field.path=value, e.g. train.epochs=5");
  }

  // Strings need no quotes on the command line.
  const pb::FieldDescriptor* target = fields.back();
  if (target->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING && !target->is_repeated() &&
      (value.empty() || (value.front() != '"' && value.front() != '\''))) {
    value = text_format_string(value);
  }

  // Parse "a { b { c: value } }" on its own, so nothing but the target can be set.
  std::string snippet;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) snippet += fields[i]->name() + " { ";
  snippet += target->name() + ": " + value;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) snippet += " }";
  TextFormat::Parser parser;
  ErrorList errors;
  parser.RecordErrorsTo(&errors);
  Config piece;
  const bool parsed = parser.ParseFromString(snippet, &piece);
  if (!parsed) {
    throw ConfigError(where + path + ": " +
                      (errors.errors.empty() ? "invalid value" : errors.errors.front().message));
  }
  // A value such as "5 } model { heads: 1" must not set other fields.
  const pb::Message* level = &piece;
  for (const pb::FieldDescriptor* field : fields) {
    std::vector<const pb::FieldDescriptor*> set;
    level->GetReflection()->ListFields(*level, &set);
    if (set.size() != 1 || set.front() != field) {
      throw ConfigError(where + path + ": the value must not set other fields");
    }
    if (field != target) level = &level->GetReflection()->GetMessage(*level, field);
  }

  pb::Message* parent = &config;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) {
    parent = parent->GetReflection()->MutableMessage(parent, fields[i]);
  }
  parent->GetReflection()->ClearField(parent, target);
  config.MergeFrom(piece);
  return {path, override_text};
}

}  // namespace

Config paper_config() {
  Config config;
  complete(config);
  return config;
}

Config parse_config(const std::string& text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  TextFormat::ParseInfoTree tree;
  Config config = parse_text(text, source_name, &tree);
  Origin origin{source_name, &tree, {}};
  for (const std::string& override_text : overrides) {
    origin.overrides.push_back(apply_override(override_text, config));
  }
  complete(config);
  validate_with_origin(config, &origin);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  // A directory opens as a stream and reads as empty text, which would be the paper's config.
  if (std::filesystem::is_directory(path)) throw ConfigError(path + ": is a directory");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return parse_config(text.str(), path, overrides);
}

void validate(const Config& config) { validate_with_origin(config, nullptr); }

int metrics_port(const MonitoringConfig& monitoring, int local_rank) {
  return monitoring.metrics_port() == 0 ? 0 : monitoring.metrics_port() + local_rank;
}

std::string describe_metrics_endpoints(const MonitoringConfig& monitoring, int local_ranks) {
  if (monitoring.metrics_port() == 0) return "off (monitoring.metrics_port = 0)";
  const int first = metrics_port(monitoring, 0);
  std::string text =
      "http://" + monitoring.metrics_address() + ":" + std::to_string(first) + "/metrics";
  if (local_ranks > 1) {
    text += " (local ranks 0-" + std::to_string(local_ranks - 1) + ": ports " +
            std::to_string(first) + "-" + std::to_string(metrics_port(monitoring, local_ranks - 1)) +
            ")";
  }
  return text;
}

std::string to_text(const Config& config) {
  Config full = config;
  complete(full);  // what the loader would make of it, every field explicit
  TextFormat::Printer printer;
  printer.SetUseShortRepeatedPrimitives(true);  // "widths: [16, 32, ...]", one line per list
  std::string text;
  printer.PrintToString(full, &text);
  return text;
}

}  // namespace hds::config

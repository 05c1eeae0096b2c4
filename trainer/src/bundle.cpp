#include "hds/trainer/bundle.h"

#include <torch/version.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hds/common/read_file.h"
#include "hds/common/text_format.h"
#include "hds/config/config.h"
#include "hds/data/dicom.h"
#include "hds/scoring/scoring.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/export.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

namespace fs = std::filesystem;
using hds::config::ConfigError;

namespace {

// The layout of docs/design.md §3, "Model bundles", relative to the bundle's folder.
constexpr const char* kMetadata = "configs/metadata.json";
constexpr const char* kTrainingConfig = "configs/training.pbtxt";
constexpr const char* kWeights = "models/model.pt";
constexpr const char* kModelCard = "docs/README.md";
constexpr const char* kMetricsJson = "docs/metrics.json";
constexpr const char* kMetricsMarkdown = "docs/metrics.md";

// The MONAI Bundle metadata schema whose keys metadata.json carries.
constexpr const char* kMonaiSchema =
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
    "meta_schema_20220324.json";

constexpr const char* kIntendedUse =
    "Research on mass detection in mammograms. Not a medical device: not for diagnosis, screening "
    "decisions or any clinical use. Its figures hold only for films like those it was trained and "
    "validated on (docs/metrics.md); other scanners, populations or preprocessing need their own "
    "validation.";

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// A figure the run did not record is null.
nlohmann::json validation_json(const hds::checkpoint::ValidationResult& result) {
  const auto figure = [](bool has, double value) {
    return has ? nlohmann::json(value) : nlohmann::json();
  };
  return {{"epoch", result.epoch()},
          {"dice", figure(result.has_dice(), result.dice())},
          {"accuracy", figure(result.has_accuracy(), result.accuracy())},
          {"auc", figure(result.has_auc(), result.auc())},
          {"loss", figure(result.has_loss(), result.loss())}};
}

// How the checkpoint was chosen, by the name the run gave its folder, and the validation figures
// of that choice.
nlohmann::json selection_json(const std::string& checkpoint,
                              const hds::checkpoint::CheckpointMeta& meta) {
  const std::string name = hds::common::without_trailing_slash(checkpoint).filename().string();
  nlohmann::json selection{{"checkpoint", name},
                           {"global_step", meta.global_step()},
                           {"completed_epochs", meta.completed_epochs()}};
  if (name == "best-dice" && meta.has_best_dice()) {
    selection["criterion"] = "the best validation Dice of the run";
    selection["validation"] = validation_json(meta.best_dice());
  } else if (name == "best-accuracy" && meta.has_best_accuracy()) {
    selection["criterion"] = "the best validation accuracy of the run";
    selection["validation"] = validation_json(meta.best_accuracy());
  } else {
    selection["criterion"] = "chosen by hand (" + name + "); its last validation is shown";
    selection["validation"] =
        meta.has_last_validation() ? validation_json(meta.last_validation()) : nlohmann::json();
  }
  return selection;
}

std::string figure_text(const nlohmann::json& value) {
  return value.is_number() ? hds::common::fixed_decimals(value.get<double>(), 4) : "—";
}

// `heading` is the Markdown level of its sections ("#" alone, "##" inside the model card).
std::string metrics_markdown(const nlohmann::json& metrics, const std::string& evaluation_md,
                             const std::string& heading) {
  std::ostringstream md;
  const nlohmann::json& selection = metrics["selection"];
  md << heading << " How this model was chosen\n\nCheckpoint `"
     << selection["checkpoint"].get<std::string>() << "` (global step "
     << selection["global_step"].get<int64_t>() << ", " << selection["completed_epochs"].get<int>()
     << " epochs): " << selection["criterion"].get<std::string>() << ".\n\n";
  const nlohmann::json& validation = selection["validation"];
  if (validation.is_null()) {
    md << "The run recorded no validation for it.\n";
  } else {
    md << "| Validation epoch | Dice | Accuracy | AUC | Loss |\n|---|---|---|---|---|\n| "
       << validation["epoch"].get<int>() << " | " << figure_text(validation["dice"]) << " | "
       << figure_text(validation["accuracy"]) << " | " << figure_text(validation["auc"]) << " | "
       << figure_text(validation["loss"]) << " |\n";
  }
  md << "\n" << heading << " Evaluation\n\n";
  if (evaluation_md.empty()) {
    md << "None included: run `hds-trainer eval` on a held-out split and export again with "
          "`--evaluation`.\n";
  } else {
    md << evaluation_md;
  }
  return md.str();
}

std::string model_card(const nlohmann::json& metadata, const std::string& metrics_md) {
  // `metrics_md`: metrics_markdown at level "##".
  const nlohmann::json& hds = metadata["hds"];
  std::ostringstream md;
  md << "# " << metadata["name"].get<std::string>() << " " << metadata["version"].get<std::string>()
     << "\n\n"
     << metadata["description"].get<std::string>() << "\n\n## Intended use and limits\n\n"
     << metadata["intended_use"].get<std::string>() << "\n\n## Input\n\n"
     << metadata["image_classes"].get<std::string>() << "\n\n## Output\n\n"
     << metadata["pred_classes"].get<std::string>()
     << " A pixel is mass, and a film positive, when "
     << "its probability exceeds " << hds["threshold"].get<double>() << ".\n\n## Training\n\n"
     << metadata["data_source"].get<std::string>()
     << " The whole configuration is `configs/training.pbtxt`.\n\n## Use\n\n"
     << "With this service: `hds-trainer infer --checkpoint <this folder> --out OUT FILMS...`.\n\n"
     << "In Python PyTorch: `torch.load(\"models/model.pt\")[\"state_dict\"]` holds the weights in "
        "the "
        "authors' module order (`tests/bench/hds_reference.py` builds the network from "
     << "`hds.model` of `configs/metadata.json`); `probe_input`, `probe_seg` and `probe_cls` are "
        "an input and every head's logits for it in eval mode, to check another implementation "
        "against.\n\n"
     << metrics_md;
  return md.str();
}

nlohmann::json metadata_json(const hds::config::Config& config,
                             const hds::checkpoint::CheckpointMeta& meta,
                             const nlohmann::json& changelog, const std::string& version,
                             const nlohmann::json& metrics) {
  const auto& data = config.data();
  const int rows = data.image_rows(), cols = data.image_cols();
  const std::string preprocessing =
      "single-channel grey mammogram: grey levels scaled to 0..1 by the file's maximum level "
      "(DICOM through its grayscale pipeline, bright = dense), " +
      std::string(data.breast_region() == hds::config::DataConfig::LARGEST_COMPONENT
                      ? "every bright region but the largest (above " +
                            hds::common::fixed_decimals(data.breast_threshold(), 3) + ") cleared, "
                      : "") +
      "columns whose maximum is at most " + hds::common::fixed_decimals(data.blank_threshold(), 3) +
      " cut at both sides, resized to " + std::to_string(rows) + " x " + std::to_string(cols) +
      ", then normalised as (x - " + std::to_string(meta.data_mean()) + ") / " +
      std::to_string(meta.data_std()) + " (the training split's statistics).";
  const auto image_format = [&](const char* format, int channels, nlohmann::json channel_def) {
    return nlohmann::json{{"type", "image"},
                          {"format", format},
                          {"modality", "MG"},
                          {"num_channels", channels},
                          {"spatial_shape", {rows, cols}},
                          {"dtype", "float32"},
                          {"value_range", nlohmann::json::array()},
                          {"is_patch_data", false},
                          {"channel_def", std::move(channel_def)}};
  };
  nlohmann::json eval_metrics = nlohmann::json::object();
  const nlohmann::json& validation = metrics["selection"]["validation"];
  if (!validation.is_null()) {
    for (const char* key : {"dice", "accuracy", "auc"})
      if (validation[key].is_number())
        eval_metrics[std::string("validation_") + key] = validation[key];
  }
  return {
      {"schema", kMonaiSchema},
      {"version", version},
      {"changelog", changelog},
      {"monai_version", "not needed: written by hds-trainer (LibTorch)"},
      {"pytorch_version", torch_version()},
      {"numpy_version", "not needed"},
      {"optional_packages_version", nlohmann::json::object()},
      {"name", "HDS U-ResNet mammogram masses"},
      {"task", "Mass segmentation and whole-mammogram mass classification"},
      {"description",
       "The Hybrid Deep Supervision U-ResNet (Zhang, Zhang & Chung 2018): one network that "
       "segments masses and gives the probability that a mammogram holds one."},
      {"authors", "HDS training service"},
      {"copyright", "The HDS training service's authors"},
      {"intended_use", kIntendedUse},
      {"data_source", "Trained on the " + data.source() + " dataset" +
                          (data.root().empty() ? "" : " at " + data.root()) + "."},
      {"data_type", "dicom, png or pgm films"},
      {"image_classes", preprocessing},
      {"label_classes", "single channel mask, 1 is mass, 0 is everything else"},
      {"pred_classes",
       "2 channels of the last head's segmentation logits (channel 1 is mass; softmax gives "
       "probabilities) and a 2-logit classification map reduced to the image's mass probability "
       "by the MIL rule " +
           hds::config::LossConfig::MilRule_Name(config.loss().mil_rule()) + "."},
      {"eval_metrics", eval_metrics},
      {"references",
       {"Zhang, Zhang & Chung, A Unified Mammogram Analysis Method via Hybrid Deep Supervision, "
        "2018"}},
      {"network_data_format",
       {{"inputs", {{"image", image_format("magnitude", 1, {{"0", "image"}})}}},
        {"outputs",
         {{"pred", image_format("segmentation", 2, {{"0", "background"}, {"1", "mass"}})}}}}},
      {"hds",
       {{"model",
         {{"widths", config.model().widths()},
          {"blocks_per_stage", config.model().blocks_per_stage()},
          {"heads", config.model().heads()}}},
        {"normalisation", {{"mean", meta.data_mean()}, {"std", meta.data_std()}}},
        {"preprocessing",
         {{"image_rows", rows},
          {"image_cols", cols},
          {"blank_threshold", data.blank_threshold()},
          {"breast_region", hds::config::DataConfig::BreastRegion_Name(data.breast_region())},
          {"breast_threshold", data.breast_threshold()}}},
        {"mil_rule", hds::config::LossConfig::MilRule_Name(config.loss().mil_rule())},
        {"loss_variant", hds::config::LossConfig::Variant_Name(config.loss().variant())},
        {"threshold", hds::scoring::kOperatingThreshold},
        {"device_observer_uid", hds::data::new_dicom_uid()},
        {"weights", kWeights},
        {"training_config", kTrainingConfig}}}};
}

nlohmann::json read_json_file(const fs::path& path) {
  try {
    return nlohmann::json::parse(hds::common::read_whole_file(path.string()));
  } catch (const nlohmann::json::exception& error) {
    throw ConfigError(path.string() + ": not JSON (" + error.what() + ")");
  } catch (const hds::common::FileReadError& error) {
    throw ConfigError(error.what());
  }
}

// The changelog of the bundle to be written in `dir`: an existing bundle's with this version's
// entry added. Refuses a folder holding something else, and a version the bundle already has.
nlohmann::json updated_changelog(const fs::path& dir, const std::string& version,
                                 const std::string& entry) {
  nlohmann::json changelog = nlohmann::json::object();
  std::error_code error;
  if (fs::exists(dir / kMetadata)) {
    const nlohmann::json old = read_json_file(dir / kMetadata);
    if (old.contains("changelog") && old["changelog"].is_object()) changelog = old["changelog"];
    if (changelog.contains(version))
      throw ConfigError(dir.string() + ": the bundle already holds version " + version +
                        "; give a new --bundle-version");
  } else if (fs::exists(dir) && !fs::is_empty(dir, error)) {
    throw ConfigError(dir.string() +
                      ": holds files but no bundle (configs/metadata.json); give a new or empty "
                      "folder");
  }
  changelog[version] = entry;
  return changelog;
}

}  // namespace

void export_bundle(const std::string& checkpoint, const std::string& dir,
                   const BundleOptions& options) {
  if (options.version.empty()) throw ConfigError("export: --bundle-version must not be empty");
  const hds::checkpoint::CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  if (!meta.has_data_mean() || !meta.has_data_std())
    throw CheckpointError(checkpoint +
                          ": holds no training normalisation (written before checkpoints recorded "
                          "it); continue the run for a step to write a new checkpoint");
  const hds::config::Config config = saved_config(meta, checkpoint);
  const fs::path root(dir);
  const std::string entry =
      options.changelog.empty()
          ? "exported from " + checkpoint + " at global step " + std::to_string(meta.global_step())
          : options.changelog;
  const nlohmann::json changelog = updated_changelog(root, options.version, entry);

  nlohmann::json evaluation;
  std::string evaluation_md;
  if (!options.evaluation.empty()) {
    const fs::path eval_dir(options.evaluation);
    evaluation = read_json_file(eval_dir / "metrics.json");
    try {
      evaluation_md = hds::common::read_whole_file((eval_dir / "metrics.md").string());
    } catch (const hds::common::FileReadError& error) {
      throw ConfigError(std::string(error.what()) + " (an `hds-trainer eval --out` folder?)");
    }
  }
  const nlohmann::json metrics{{"selection", selection_json(checkpoint, meta)},
                               {"evaluation", evaluation}};
  const std::string metrics_md = metrics_markdown(metrics, evaluation_md, "#");
  const nlohmann::json metadata = metadata_json(config, meta, changelog, options.version, metrics);

  for (const char* folder : {"configs", "models", "docs"}) fs::create_directories(root / folder);
  HdsNet model(config.model());
  load_checkpoint(checkpoint, model, nullptr);
  export_model(model, config, (root / kWeights).string(), ExportLayout::kReference, true);
  hds::common::replace_file((root / kTrainingConfig).string(), hds::config::to_text(config));
  hds::common::replace_file((root / kMetricsJson).string(), metrics.dump(2) + "\n");
  hds::common::replace_file((root / kMetricsMarkdown).string(), metrics_md);
  hds::common::replace_file((root / kModelCard).string(),
                            model_card(metadata, metrics_markdown(metrics, evaluation_md, "##")));
  hds::common::replace_file((root / kMetadata).string(), metadata.dump(2) + "\n");
}

bool is_bundle(const std::string& dir) { return fs::is_regular_file(fs::path(dir) / kMetadata); }

BundleModel read_bundle(const std::string& dir, const std::vector<std::string>& overrides) {
  const fs::path root(dir);
  nlohmann::json metadata;
  try {
    metadata = read_json_file(root / kMetadata);
  } catch (const ConfigError& error) {
    throw CheckpointError(error.what());
  }
  const auto where = (root / kMetadata).string();
  if (!metadata.contains("hds") || !metadata["hds"].contains("normalisation") ||
      !metadata["hds"]["normalisation"].contains("mean") ||
      !metadata["hds"]["normalisation"].contains("std") ||
      !metadata["hds"]["normalisation"]["mean"].is_number() ||
      !metadata["hds"]["normalisation"]["std"].is_number() || !metadata.contains("version") ||
      !metadata["version"].is_string())
    throw CheckpointError(where +
                          ": lacks version or hds.normalisation {mean, std}: not a bundle "
                          "hds-trainer export wrote");
  BundleModel bundle;
  try {
    bundle.config = hds::config::load_config((root / kTrainingConfig).string(), overrides);
  } catch (const ConfigError& error) {
    throw CheckpointError(error.what());
  }
  bundle.normalisation = {metadata["hds"]["normalisation"]["mean"].get<double>(),
                          metadata["hds"]["normalisation"]["std"].get<double>()};
  bundle.version = hds::common::without_trailing_slash(dir).filename().string() + " " +
                   metadata["version"].get<std::string>();
  const nlohmann::json& device = metadata["hds"]["device_observer_uid"];
  bundle.device_uid = device.is_string() ? device.get<std::string>() : hds::data::new_dicom_uid();
  bundle.weights = (root / kWeights).string();
  return bundle;
}

}  // namespace hds::trainer

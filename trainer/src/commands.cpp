#include "hds/trainer/commands.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "hds/common/exit_codes.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/film_file.h"
#include "hds/data/png_io.h"
#include "hds/data/preprocess.h"
#include "hds/scoring/evaluation_report.h"
#include "hds/scoring/scoring.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/evaluation.h"
#include "hds/trainer/export.h"
#include "hds/trainer/metrics.h"
#include "hds/trainer/model.h"
#include "hds/trainer/progress.h"
#include "hds/trainer/training.h"
#include "hds/trainer/training_history.h"

namespace hds::trainer {

using hds::scoring::Component;
using hds::scoring::Components;
using hds::scoring::CurvePoint;
using hds::scoring::EvaluationReport;
using hds::scoring::FilmScore;

namespace {

std::atomic<bool> stop_signal{false};
std::atomic<bool> stop_overdue_signal{false};
extern "C" void request_stop(int) { stop_signal = true; }
extern "C" void declare_stop_overdue(int) { stop_overdue_signal = true; }

// "auto": the run's newest intact checkpoint (choose_auto_resume) when it has any (a requeued
// job), else a fresh start. Rank 0 says why when that is not `latest`'s.
std::string resume_path(const hds::config::Config& config, const std::string& resume,
                        const World& world, std::ostream& out) {
  if (resume != "auto") return resume;
  const AutoResume choice = choose_auto_resume(
      (std::filesystem::path(config.train().output_dir()) / "checkpoints").string());
  if (!choice.note.empty() && world.is_root()) out << "warning: " << choice.note << std::endl;
  return choice.checkpoint;
}

void print_summary(const FitResult& result, std::ostream& out) {
  auto line = [&](const char* what, const hds::checkpoint::ValidationResult& v) {
    out << what << ": epoch " << v.epoch() << " dice " << v.dice() << " accuracy " << v.accuracy()
        << " auc " << v.auc() << "\n";
  };
  out << "summary: " << result.completed_epochs << " epochs, " << result.global_step
      << " steps, last loss " << result.last_loss << "\n";
  if (result.last_validation.has_epoch()) {
    line("last validation", result.last_validation);
    line("best dice", result.best_dice);
    line("best accuracy", result.best_accuracy);
  }
  out << "checkpoint: " << result.last_checkpoint << "\n";
}

// The films of `split` ("val", "test" or "all").
std::vector<hds::data::Film> films_of(const hds::data::Dataset& dataset, const std::string& split) {
  if (split == "val") return dataset.val;
  if (split == "test") return dataset.test;
  std::vector<hds::data::Film> all = dataset.train;
  all.insert(all.end(), dataset.val.begin(), dataset.val.end());
  all.insert(all.end(), dataset.test.begin(), dataset.test.end());
  return all;
}

// The film's grey levels for display: its normalised pixels back on the 0..1 scale, as 0..255.
std::vector<uint8_t> display_grey(const hds::data::Film& film, double mean, double std) {
  std::vector<uint8_t> grey(film.image.size());
  for (size_t i = 0; i < grey.size(); ++i) {
    const double level = std::clamp(film.image[i] * std + mean, 0.0, 1.0);
    grey[i] = static_cast<uint8_t>(std::lround(level * 255));
  }
  return grey;
}

// The normalisation a checkpoint's model was trained with.
struct Normalisation {
  double mean = 0;
  double std = 1;
};

}  // namespace

hds::common::MainOptions trainer_main_options(const std::unique_ptr<World>& world) {
  hds::common::MainOptions options;
  options.classify = [](const std::exception& error) -> hds::common::Failure {
    if (dynamic_cast<const NonFiniteLossError*>(&error) != nullptr) {
      return {hds::common::kExitNonFiniteLoss, "training stopped: "};
    }
    if (dynamic_cast<const CollectiveError*>(&error) != nullptr) {
      return {hds::common::kExitRankLost, "a rank was lost: "};
    }
    return hds::common::classify_failure(error);
  };
  const auto distributed = [&world] { return world && world->size() > 1; };
  options.context = [&world, distributed] {
    return distributed() ? world->describe() + ": " : std::string();
  };
  // Instead of finalising MPI, which would wait for ranks that may never come.
  options.on_failure = [&world, distributed](int code) {
    if (distributed()) world->abort(code);
  };
  return options;
}

void run_describe_command(const hds::config::Config& config, std::ostream& out) {
  HdsNet model(config.model());
  out << describe_modules(*model);
  const auto [train_rows, train_cols] =
      HdsNetImpl::cls_map_size(config.data().patch_rows(), config.data().patch_cols());
  const auto [test_rows, test_cols] =
      HdsNetImpl::cls_map_size(config.data().image_rows(), config.data().image_cols());
  out << "parameters: " << count_parameters(*model) << "\n"
      << "trunk_conv3x3: " << count_convs(*model->named_children()["trunk"], 3) << "\n"
      << "conv3x3: " << count_convs(*model, 3) << "\n"
      << "cls_map_train: " << train_rows << "x" << train_cols << "\n"
      << "cls_map_test: " << test_rows << "x" << test_cols << "\n";
}

int run_fit_command(const hds::config::Config& config, const FitCommand& command,
                    const World& world, std::ostream& out) {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
  std::signal(SIGUSR2, declare_stop_overdue);
  FitOptions options;
  options.world = &world;
  options.resume_from = resume_path(config, command.resume, world, out);
  options.init_from = command.init_from;
  options.stop_at_step = command.stop_at_step;
  options.stop_requested = [] { return stop_signal.load(); };
  options.stop_overdue = [] { return stop_overdue_signal.load(); };
  // Every rank serves its own metrics (port + local rank) for as long as it trains; rank 0 also
  // shows the progress and keeps the history and curves.svg.
  std::unique_ptr<TrainerMetrics> metrics;
  if (config.monitoring().metrics_port() != 0) {
    metrics = std::make_unique<TrainerMetrics>(
        config.monitoring(), RankIdentity{world.rank(), world.local_rank(), world.size()});
  }
  std::unique_ptr<ProgressDisplay> progress;
  std::unique_ptr<TrainingHistory> history;
  if (world.is_root()) {
    progress = std::make_unique<ProgressDisplay>(
        out, choose_progress_style(command.progress, STDOUT_FILENO), config.train().epochs(),
        config.train().log_every_steps());
    options.log = &progress->stream();
    std::filesystem::create_directories(config.train().output_dir());
    history = std::make_unique<TrainingHistory>(config.train().output_dir(),
                                                config.train().log_every_steps());
    *options.log << "metrics: "
                 << hds::config::describe_metrics_endpoints(config.monitoring(), world.local_size())
                 << (metrics && world.size() > world.local_size() ? " on every node" : "")
                 << "\ncurves: " << history->curves_path() << " (redrawn at each validation)"
                 << std::endl;
  }
  options.on_step = [&](const StepReport& step) {
    if (metrics) metrics->record_step(step);
    if (progress) progress->on_step(step);
    if (history) history->on_step(step);
  };
  options.on_nonfinite_loss = [&](double loss) {
    if (metrics) metrics->record_nonfinite_loss(loss);
  };
  options.on_validation = [&](const hds::checkpoint::ValidationResult& last,
                              const hds::checkpoint::ValidationResult& best_dice) {
    if (metrics) metrics->record_validation(last, best_dice);
    if (history) history->on_validation(last);
  };
  options.on_checkpoint = [&](double seconds) {
    if (metrics) metrics->record_checkpoint(seconds);
  };
  const FitResult result = fit(config, options);
  history.reset();  // its last interval and curves.svg first: the summary names them
  if (progress) print_summary(result, progress->stream());
  return result.finished ? hds::common::kExitFinished : hds::common::kExitStopped;
}

void run_export_command(const ExportCommand& command, std::ostream& out) {
  if (command.checkpoint.empty() == !command.init) {
    throw hds::config::ConfigError("export: give --checkpoint DIR or --init [--config FILE]");
  }
  hds::config::Config config;
  if (command.init) {
    config = hds::config::load_config_or_paper(command.config_path, command.overrides);
    torch::manual_seed(config.train().seed());
  } else {
    config = saved_config(read_checkpoint_meta(command.checkpoint), command.checkpoint);
  }
  HdsNet model(config.model());
  if (!command.init) load_checkpoint(command.checkpoint, model, nullptr);
  const auto layout =
      command.layout == "reference" ? ExportLayout::kReference : ExportLayout::kNative;
  export_model(model, config, command.out, layout, command.probe);
  out << "wrote " << command.out << " (" << command.layout << " layout"
      << (command.probe ? ", with probe" : "") << ")\n";
}

void run_eval_command(const EvalCommand& command, std::ostream& out) {
  namespace fs = std::filesystem;
  const auto meta = read_checkpoint_meta(command.checkpoint);
  const hds::config::Config saved = saved_config(meta, command.checkpoint, command.overrides);
  hds::config::Config config =
      command.config_path.empty()
          ? saved
          : hds::config::load_config(command.config_path, command.overrides);
  // Films are normalised as the training films were, whatever dataset they come from.
  if (meta.has_data_mean() && meta.has_data_std()) {
    config.mutable_data()->set_mean(meta.data_mean());
    config.mutable_data()->set_std(meta.data_std());
  }
  if (config.train().threads() > 0) torch::set_num_threads(config.train().threads());
  HdsNet model(saved.model());
  load_checkpoint(command.checkpoint, model, nullptr);
  const torch::Device device = resolve_device(config.train().device());
  model->to(device);
  const hds::data::Dataset dataset = hds::data::load_dataset(config.data());
  const std::vector<hds::data::Film> films = films_of(dataset, command.split);
  out << "eval: " << films.size() << " films of split " << command.split << " ("
      << config.data().source()
      << (dataset.report.skipped_films > 0
              ? "; " + std::to_string(dataset.report.skipped_films) +
                    " films of the dataset left out while loading, named in the report"
              : "")
      << "), normalised with mean " << dataset.mean << " std " << dataset.std
      << (meta.has_data_mean() ? " (the checkpoint's)" : " (this dataset's)") << "\n";
  if (films.empty()) {
    throw hds::config::ConfigError("eval: split " + command.split + " of " +
                                   config.data().source() + " has no films");
  }
  const fs::path dir(command.out);
  fs::create_directories(dir / "overlays");
  // Scores per built head; only the last one's overlays are drawn.
  std::vector<std::vector<FilmScore>> scored(model->heads().size());
  for (const hds::data::Film& film : films) {
    const std::vector<HeadPrediction> heads = predict_heads(model, film, saved.loss(), device);
    for (size_t h = 0; h < heads.size(); ++h) {
      scored[h].push_back(hds::scoring::score_film(
          film.id, film.patient, heads[h].foreground.data(), film.mask.data(), film.rows, film.cols,
          heads[h].mass_probability));
    }
    std::vector<uint8_t> predicted(film.mask.size());
    const std::vector<float>& last = heads.back().foreground;
    for (size_t i = 0; i < predicted.size(); ++i) {
      predicted[i] = last[i] > hds::scoring::kOperatingThreshold;
    }
    hds::data::write_rgb_png(
        (dir / "overlays" / (film.id + ".png")).string(), film.rows, film.cols,
        hds::scoring::overlay_rgb(display_grey(film, dataset.mean, dataset.std), film.mask.data(),
                                  predicted.data(), film.rows, film.cols));
  }
  std::vector<EvaluationReport> reports;
  const size_t first = command.heads == "all" ? 0 : scored.size() - 1;
  for (size_t h = first; h < scored.size(); ++h) {
    reports.push_back(hds::scoring::build_report(std::move(scored[h]), command.split,
                                                 model->heads()[h], command.bootstrap_rounds,
                                                 command.seed));
    reports.back().films_left_out = dataset.report.skipped_films;
    reports.back().masses_left_out = dataset.report.skipped_masses;
    reports.back().left_out = dataset.report.warnings;
  }
  const EvaluationReport& last = reports.back();
  std::string markdown = "# Evaluation of " + command.checkpoint + "\n\n";
  for (const EvaluationReport& report : reports)
    markdown += hds::scoring::report_markdown(report) + "\n";
  hds::common::replace_file((dir / "metrics.md").string(), markdown);
  hds::common::replace_file((dir / "films.csv").string(), hds::scoring::films_csv(last));
  hds::common::replace_file(
      (dir / "roc.svg").string(),
      hds::scoring::curve_svg(last.roc, "ROC, head " + std::to_string(last.head),
                              "false-positive rate", "true-positive rate", 1));
  double most_false_positives = 1;
  for (const CurvePoint& point : last.froc) {
    if (std::isfinite(point.x)) most_false_positives = std::max(most_false_positives, point.x);
  }
  hds::common::replace_file(
      (dir / "froc.svg").string(),
      hds::scoring::curve_svg(last.froc, "FROC, head " + std::to_string(last.head),
                              "false positives per image", "lesion sensitivity",
                              most_false_positives));
  // Last: its presence says the evaluation is complete (hds-launch cv and ablation rely on it).
  hds::common::replace_file((dir / "metrics.json").string(), hds::scoring::reports_json(reports));
  out << hds::scoring::report_markdown(last) << "wrote " << (dir / "metrics.json").string()
      << ", metrics.md, films.csv, roc.svg, froc.svg and " << films.size() << " overlays in "
      << (dir / "overlays").string() << "\n";
}

namespace {

// What infer writes for a film named `name`: <name><suffix> under --out.
constexpr const char* kMaskSuffix = ".mask.png";
constexpr const char* kOverlaySuffix = ".overlay.png";
constexpr const char* kReportSuffix = ".json";
constexpr const char* kSegmentationSuffix = ".seg.dcm";  // DICOM films only
constexpr std::array<const char*, 4> kInferSuffixes = {kMaskSuffix, kOverlaySuffix, kReportSuffix,
                                                       kSegmentationSuffix};

// The names of the inputs' outputs under `dir`: each file's stem, numbered (-2, -3, ...) when an
// earlier input took it or when one of its outputs would be an input file: infer never writes
// over an input (e.g. `infer --out d d/a.png d/a.mask.png`: a.png's outputs become d/a-2.*).
std::vector<std::string> infer_output_names(const std::vector<std::string>& inputs,
                                            const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::set<std::string> input_files;
  for (const std::string& input : inputs) input_files.insert(fs::weakly_canonical(input).string());
  std::set<std::string> taken;
  const auto usable = [&](const std::string& name) {
    if (taken.count(name) != 0) return false;
    return std::none_of(kInferSuffixes.begin(), kInferSuffixes.end(), [&](const char* suffix) {
      return input_files.count(fs::weakly_canonical(dir / (name + suffix)).string()) != 0;
    });
  };
  std::vector<std::string> names;
  for (const std::string& input : inputs) {
    const std::string stem = fs::path(input).stem().string();
    std::string name = stem;
    for (int n = 2; !usable(name); ++n) name = stem + "-" + std::to_string(n);
    taken.insert(name);
    names.push_back(name);
  }
  return names;
}

// One film through the model; writes its outputs under `dir` named `name` (for DICOM films also
// a DICOM Segmentation).
void infer_film(const std::string& path, const std::string& name, HdsNet& model,
                const hds::config::Config& config, const Normalisation& normalisation,
                const torch::Device& device, const std::filesystem::path& dir, std::ostream& out) {
  const hds::data::FilmFile file = hds::data::read_film_file(path, config.data().max_film_pixels());
  const hds::data::GreyImage& image = file.image;
  const hds::data::PreprocessOptions options = hds::data::preprocess_options_for(config.data());
  std::vector<hds::data::Film> films = {hds::data::preprocess_film(
      image, std::vector<uint8_t>(image.pixels.size(), 0), options, name, file.dicom.patient_id)};
  hds::data::normalise_films(films, normalisation.mean, normalisation.std);
  const HeadPrediction prediction = predict_heads(model, films[0], config.loss(), device).back();
  const std::vector<float> map = hds::data::restore_film_geometry(
      prediction.foreground, options.rows, options.cols, hds::data::kept_columns(image, options),
      image.rows, image.cols);

  std::vector<uint8_t> mask(map.size()), grey(map.size()), shown(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    mask[i] = map[i] > hds::scoring::kOperatingThreshold;
    shown[i] = mask[i] * 255;
    grey[i] = static_cast<uint8_t>(std::lround(255.0 * image.pixels[i] / image.max_level));
  }
  const Components lesions =
      hds::scoring::connected_components(mask.data(), image.rows, image.cols);
  std::vector<double> peaks(lesions.components.size(), 0);
  for (size_t i = 0; i < map.size(); ++i) {
    if (lesions.labels[i] > 0) {
      double& peak = peaks[static_cast<size_t>(lesions.labels[i] - 1)];
      peak = std::max(peak, static_cast<double>(map[i]));
    }
  }
  const hds::data::DicomFilm& dicom = file.dicom;
  const bool spaced = dicom.row_spacing_mm > 0 && dicom.col_spacing_mm > 0;
  nlohmann::json report{
      {"input", path},
      {"kind", file.kind},
      {"rows", image.rows},
      {"cols", image.cols},
      {"mass_probability", prediction.mass_probability},
      {"positive", prediction.mass_probability > hds::scoring::kOperatingThreshold},
      {"threshold", hds::scoring::kOperatingThreshold},
      {"pixel_spacing_mm", nullptr},
      {"lesions", nlohmann::json::array()}};
  if (spaced) {
    report["pixel_spacing_mm"] = {dicom.row_spacing_mm, dicom.col_spacing_mm};
    report["pixel_spacing_tag"] = dicom.spacing_tag;
  }
  if (file.kind == "dicom") {
    report["laterality"] =
        dicom.laterality.empty() ? nlohmann::json() : nlohmann::json(dicom.laterality);
    report["view"] = dicom.view.empty() ? nlohmann::json() : nlohmann::json(dicom.view);
    report["dicom_pipeline"] = dicom.pipeline;
  }
  for (size_t k = 0; k < lesions.components.size(); ++k) {
    const Component& c = lesions.components[k];
    report["lesions"].push_back(
        {{"top", c.top},
         {"left", c.left},
         {"bottom", c.bottom},
         {"right", c.right},
         {"area_pixels", c.pixels},
         {"area_mm2", spaced
                          ? nlohmann::json(c.pixels * dicom.row_spacing_mm * dicom.col_spacing_mm)
                          : nlohmann::json()},
         {"peak_probability", peaks[k]}});
  }
  const auto output = [&](const char* suffix) { return (dir / (name + suffix)).string(); };
  std::string outputs = output(kMaskSuffix) + ", " + output(kOverlaySuffix) + ", ";
  if (file.kind == "dicom") {
    // For PACS viewers: the mask as a DICOM Segmentation referencing the film.
    const std::string seg = output(kSegmentationSuffix);
    hds::data::write_mass_segmentation(path, mask, image.rows, image.cols, "HDS U-ResNet", seg);
    report["segmentation"] = seg;
    outputs += seg + ", ";
  }
  hds::data::write_grey_png(output(kMaskSuffix), image.rows, image.cols, shown);
  const std::vector<uint8_t> none(mask.size(), 0);
  hds::data::write_rgb_png(
      output(kOverlaySuffix), image.rows, image.cols,
      hds::scoring::overlay_rgb(grey, none.data(), mask.data(), image.rows, image.cols));
  hds::common::replace_file(output(kReportSuffix), report.dump(2) + "\n");
  out << path << ": mass probability " << prediction.mass_probability << ", "
      << lesions.components.size() << " lesion(s); " << outputs << output(kReportSuffix) << "\n";
}

}  // namespace

int run_infer_command(const InferCommand& command, std::ostream& out, std::ostream& errors) {
  const auto meta = read_checkpoint_meta(command.checkpoint);
  if (!meta.has_data_mean() || !meta.has_data_std()) {
    throw CheckpointError(command.checkpoint +
                          ": holds no training normalisation (written before checkpoints "
                          "recorded it); continue the run for a step to write a new checkpoint");
  }
  const hds::config::Config config = saved_config(meta, command.checkpoint);
  HdsNet model(config.model());
  load_checkpoint(command.checkpoint, model, nullptr);
  const torch::Device device = resolve_device(config.train().device());
  model->to(device);
  const std::filesystem::path dir(command.out);
  std::filesystem::create_directories(dir);
  const Normalisation normalisation{meta.data_mean(), meta.data_std()};
  const std::vector<std::string> names = infer_output_names(command.inputs, dir);
  int failed = 0;
  for (size_t i = 0; i < command.inputs.size(); ++i) {
    const std::string& path = command.inputs[i];
    try {
      infer_film(path, names[i], model, config, normalisation, device, dir, out);
    } catch (const std::exception& error) {
      ++failed;
      errors << "infer: " << path << ": failed: " << error.what() << "\n";
    }
  }
  out << "infer: " << command.inputs.size() - failed << " of " << command.inputs.size()
      << " films done" << (failed > 0 ? ", " + std::to_string(failed) + " failed" : "") << "\n";
  return std::min(failed, 100);
}

void run_bench_command(const hds::config::Config& config, const BenchOptions& options,
                       const World& world, std::ostream& out) {
  const BenchResult result = bench_training_step(config, options, world);
  if (world.is_root()) out << to_json_line(options, result) << std::endl;
}

}  // namespace hds::trainer

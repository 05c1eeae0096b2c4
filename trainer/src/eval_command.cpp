// `hds-trainer eval` (commands.h): a checkpoint's model (inference.h) on a split of its dataset,
// scored by both protocols.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <ostream>

#include "commands.h"
#include "hds/common/exit_codes.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/scoring/evaluation_report.h"
#include "hds/scoring/scoring.h"
#include "inference.h"

namespace hds::trainer {

using hds::scoring::CurvePoint;
using hds::scoring::EvaluationReport;
using hds::scoring::FilmScore;

namespace {

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

}  // namespace

void run_eval_command(const EvalCommand& command, std::ostream& out) {
  namespace fs = std::filesystem;
  // The films' dataset: the checkpoint's, or another configuration's.
  hds::config::Config config =
      command.config_path.empty()
          ? hds::config::Config()
          : hds::config::load_config(command.config_path, command.overrides);
  TrainedModel trained(command.checkpoint, command.overrides,
                       command.config_path.empty() ? "" : config.train().device());
  if (command.config_path.empty()) config = trained.config();
  // Films are normalised as the training films were, whatever dataset they come from.
  if (const auto& normalisation = trained.normalisation()) {
    config.mutable_data()->set_mean(normalisation->mean);
    config.mutable_data()->set_std(normalisation->std);
  }
  if (config.train().threads() > 0) torch::set_num_threads(config.train().threads());
  const hds::data::Dataset dataset = hds::data::load_dataset(config.data());
  const std::vector<hds::data::Film> films = films_of(dataset, command.split);
  out << "eval: " << films.size() << " films of split " << command.split << " ("
      << config.data().source()
      << (dataset.report.skipped_films > 0
              ? "; " + std::to_string(dataset.report.skipped_films) +
                    " films of the dataset left out while loading, named in the report"
              : "")
      << "), normalised with mean " << dataset.mean << " std " << dataset.std
      << (trained.normalisation() ? " (the checkpoint's)" : " (this dataset's)") << "\n";
  if (films.empty()) {
    throw hds::config::ConfigError("eval: split " + command.split + " of " +
                                   config.data().source() + " has no films");
  }
  const fs::path dir(command.out);
  fs::create_directories(dir / "overlays");
  // Scores per built head; only the last one's overlays are drawn.
  std::vector<std::vector<FilmScore>> scored(trained.model()->heads().size());
  for (const hds::data::Film& film : films) {
    const std::vector<HeadPrediction> heads = trained.predict(film);
    for (size_t h = 0; h < heads.size(); ++h) {
      scored[h].push_back(hds::scoring::score_film(
          film.id, film.patient, heads[h].foreground.data(), film.mask.data(), film.rows, film.cols,
          heads[h].mass_probability));
    }
    const std::vector<uint8_t> predicted = operating_mask(heads.back().foreground);
    write_overlay_png((dir / "overlays" / (film.id + ".png")).string(), film.rows, film.cols,
                      display_grey(film, dataset.mean, dataset.std), film.mask.data(),
                      predicted.data());
  }
  std::vector<EvaluationReport> reports;
  const size_t first = command.heads == "all" ? 0 : scored.size() - 1;
  for (size_t h = first; h < scored.size(); ++h) {
    reports.push_back(hds::scoring::build_report(std::move(scored[h]), command.split,
                                                 trained.model()->heads()[h],
                                                 command.bootstrap_rounds, command.seed));
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

CLI::App* add_eval_options(CLI::App& app, EvalCommand& eval) {
  CLI::App* command =
      app.add_subcommand("eval", "score a checkpoint on a split, as the paper does");
  command->add_option("--checkpoint", eval.checkpoint, "checkpoint directory")->required();
  hds::common::add_config_options(*command, eval.config_path, eval.overrides, false);
  command->add_option("--split", eval.split, "val, test or all")
      ->check(CLI::IsMember({"val", "test", "all"}));
  command->add_option("--heads", eval.heads, "last or all")->check(CLI::IsMember({"last", "all"}));
  command->add_option("--out", eval.out, "output folder")->required();
  command->add_option("--bootstrap", eval.bootstrap_rounds, "bootstrap resamples")
      ->check(CLI::Range(1, 100000));
  return command;
}

}  // namespace

hds::common::Subcommand add_eval_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<EvalCommand>();
  return {add_eval_options(app, *command), [command, &out] {
            run_eval_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

}  // namespace hds::trainer

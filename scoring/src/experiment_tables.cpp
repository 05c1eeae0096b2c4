#include "hds/scoring/experiment_tables.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "figure_fields.h"
#include "hds/scoring/scoring.h"

namespace hds::scoring {

namespace {

using detail::estimate_cell;
using detail::estimate_json;
using detail::figure_fields;
using detail::FigureField;
using detail::figures_json;
using detail::json_number;
using detail::table_cell;
using nlohmann::json;

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

// Reads `object[key]` of `source`: a number, or NaN for null. Names the file and the path.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  const json& at(const json& object, const std::string& key, const std::string& path) const {
    if (!object.is_object() || !object.contains(key))
      throw MetricsFileError(source_ + ": no \"" + path + key + "\" (not a metrics.json of " +
                             "hds-trainer eval?)");
    return object.at(key);
  }
  double number(const json& object, const std::string& key, const std::string& path) const {
    const json& value = at(object, key, path);
    if (value.is_null()) return kUndefined;
    if (!value.is_number())
      throw MetricsFileError(source_ + ": \"" + path + key + "\" is not a number");
    return value.get<double>();
  }
  int integer(const json& object, const std::string& key) const {
    const json& value = at(object, key, "");
    if (!value.is_number_integer())
      throw MetricsFileError(source_ + ": \"" + key + "\" is not an integer");
    return value.get<int>();
  }

  Figures figures(const json& baselines, const std::string& name) const {
    const json& object = at(baselines, name, "baselines.");
    Figures figures;
    for (const FigureField& field : figure_fields())
      field.of(figures) = number(object, field.key, "baselines." + name + ".");
    return figures;
  }

  FigureEstimates estimates(const json& model) const {
    FigureEstimates estimates;
    for (const FigureField& field : figure_fields()) {
      const std::string path = std::string("model.") + field.protocol + ".";
      const json& figure = at(at(model, field.protocol, "model."), field.name, path);
      const std::string figure_path = path + field.name + ".";
      Estimate& estimate = field.estimate(estimates);
      estimate.value = number(figure, "value", figure_path);
      estimate.low = number(figure, "low", figure_path);
      estimate.high = number(figure, "high", figure_path);
    }
    return estimates;
  }

 private:
  const std::string& source_;
};

std::string mean_std_cell(const Spread& s, int runs) {
  if (s.defined == 0) return "—";
  std::string text = table_cell(s.mean) + " ± " + table_cell(s.std);
  if (s.defined < runs)
    text += " (" + std::to_string(s.defined) + " of " + std::to_string(runs) + ")";
  return text;
}

// The model's value of `field` in each run, or a baseline's.
std::vector<double> values(const std::vector<EvaluatedRun>& runs, const FigureField& field,
                           Figures EvaluatedRun::*baseline) {
  std::vector<double> out;
  for (const EvaluatedRun& run : runs) {
    if (baseline == nullptr) {
      FigureEstimates model = run.model;
      out.push_back(field.estimate(model).value);
    } else {
      Figures figures = run.*baseline;
      out.push_back(field.of(figures));
    }
  }
  return out;
}

json spread_json(const Spread& s) {
  return {{"mean", json_number(s.mean)}, {"std", json_number(s.std)}, {"defined", s.defined}};
}

constexpr std::pair<const char*, Figures EvaluatedRun::*> kBaselines[] = {
    {"empty_mask", &EvaluatedRun::empty_mask},
    {"all_negative", &EvaluatedRun::all_negative},
    {"all_positive", &EvaluatedRun::all_positive}};

}  // namespace

EvaluatedRun parse_evaluated_run(const std::string& name, const std::string& source,
                                 const std::string& metrics_json) {
  const json document = json::parse(metrics_json, nullptr, false);
  if (document.is_discarded()) throw MetricsFileError(source + ": not valid JSON");
  const Reader read(source);
  const json& reports = read.at(document, "reports", "");
  if (!reports.is_array() || reports.empty())
    throw MetricsFileError(source + ": \"reports\" holds no report");
  const json& last = reports.back();
  EvaluatedRun run;
  run.name = name;
  run.source = source;
  const json& split = read.at(last, "split", "reports[].");
  if (!split.is_string()) throw MetricsFileError(source + ": \"split\" is not a string");
  run.split = split.get<std::string>();
  run.head = read.integer(last, "head");
  run.films = read.integer(last, "films");
  run.films_with_mass = read.integer(last, "films_with_mass");
  run.patients = read.integer(last, "patients");
  run.model = read.estimates(read.at(last, "model", ""));
  const json& baselines = read.at(last, "baselines", "");
  for (const auto& [key, member] : kBaselines) run.*member = read.figures(baselines, key);
  return run;
}

Spread spread(const std::vector<double>& values) {
  Spread s;
  double sum = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    sum += v;
    ++s.defined;
  }
  if (s.defined == 0) return {kUndefined, kUndefined, 0};
  s.mean = sum / s.defined;
  if (s.defined < 2) {
    s.std = kUndefined;
    return s;
  }
  double squares = 0;
  for (double v : values) {
    if (std::isfinite(v)) squares += (v - s.mean) * (v - s.mean);
  }
  s.std = std::sqrt(squares / (s.defined - 1));
  return s;
}

std::string cross_validation_markdown(const std::vector<EvaluatedRun>& folds) {
  const int n = static_cast<int>(folds.size());
  int films = 0, with_mass = 0;
  for (const EvaluatedRun& fold : folds) {
    films += fold.films;
    with_mass += fold.films_with_mass;
  }
  std::ostringstream md;
  md << "### Cross-validation: " << n << " folds\n\n"
     << "Each fold's test split (" << films << " films in all, " << with_mass
     << " with masses), head " << (folds.empty() ? 0 : folds.front().head)
     << "; mean ± sample standard deviation over the folds, threshold " << kOperatingThreshold
     << ".\n\n"
     << "| protocol | figure | model | all-empty mask | all-negative | all-positive |\n"
     << "|---|---|---|---|---|---|\n";
  for (const FigureField& field : figure_fields()) {
    md << "| " << field.protocol << " | " << field.label << " | "
       << mean_std_cell(spread(values(folds, field, nullptr)), n) << " | ";
    auto baseline = [&](Figures EvaluatedRun::*member) {
      return mean_std_cell(spread(values(folds, field, member)), n);
    };
    if (field.classifier) {
      md << "| " << baseline(&EvaluatedRun::all_negative) << " | "
         << baseline(&EvaluatedRun::all_positive) << " |\n";
    } else {
      md << baseline(&EvaluatedRun::empty_mask) << " | | |\n";
    }
  }
  md << "\nFolds:";
  for (const EvaluatedRun& fold : folds) md << " " << fold.name << " (" << fold.source << ")";
  md << "\n\n— : undefined on every fold; (k of n): defined on k folds only.\n";
  return md.str();
}

std::string ablation_markdown(const std::vector<EvaluatedRun>& variants) {
  std::ostringstream md;
  md << "### Loss ablation\n\n";
  if (!variants.empty()) {
    const EvaluatedRun& first = variants.front();
    md << "Split `" << first.split << "` (" << first.films << " films, " << first.films_with_mass
       << " with masses), each variant's last head; 95 % bootstrap intervals over patients, "
       << "threshold " << kOperatingThreshold << ".\n\n";
  }
  md << "| variant |";
  for (const FigureField& field : figure_fields())
    md << " " << field.protocol << ": " << field.label << " |";
  md << "\n|---|";
  for (size_t i = 0; i < figure_fields().size(); ++i) md << "---|";
  md << "\n";
  for (const EvaluatedRun& run : variants) {
    FigureEstimates model = run.model;
    md << "| " << run.name << " |";
    for (const FigureField& field : figure_fields())
      md << " " << estimate_cell(field.estimate(model)) << " |";
    md << "\n";
  }
  if (!variants.empty()) {
    // The baselines depend on the films only, which every variant shares.
    for (const auto& [key, member] : kBaselines) {
      Figures figures = variants.front().*member;
      const bool classifier_baseline = member != &EvaluatedRun::empty_mask;
      md << "| baseline: " << key << " |";
      for (const FigureField& field : figure_fields()) {
        md << " " << (field.classifier == classifier_baseline ? table_cell(field.of(figures)) : "")
           << " |";
      }
      md << "\n";
    }
  }
  md << "\n— : undefined on these films (e.g. precision with no positive call).\n";
  return md.str();
}

std::string experiment_json(const std::vector<EvaluatedRun>& runs) {
  json listed = json::array();
  for (const EvaluatedRun& run : runs) {
    FigureEstimates model = run.model;
    json figures = json::object();
    for (const FigureField& field : figure_fields())
      figures[field.key] = estimate_json(field.estimate(model));
    json baselines = json::object();
    for (const auto& [key, member] : kBaselines) baselines[key] = figures_json(run.*member);
    listed.push_back({{"name", run.name},
                      {"source", run.source},
                      {"split", run.split},
                      {"head", run.head},
                      {"films", run.films},
                      {"films_with_mass", run.films_with_mass},
                      {"patients", run.patients},
                      {"model", figures},
                      {"baselines", baselines}});
  }
  json summary = json::object();
  for (const FigureField& field : figure_fields()) {
    json entry = {{"model", spread_json(spread(values(runs, field, nullptr)))}};
    for (const auto& [key, member] : kBaselines)
      entry[key] = spread_json(spread(values(runs, field, member)));
    summary[field.key] = entry;
  }
  return json{{"runs", listed}, {"summary", summary}}.dump(2) + "\n";
}

}  // namespace hds::scoring

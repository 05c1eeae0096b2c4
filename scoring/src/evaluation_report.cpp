#include "hds/scoring/evaluation_report.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "figure_fields.h"
#include "hds/scoring/line_chart.h"

namespace hds::scoring {

namespace detail {

const std::vector<FigureField>& figure_fields() {
  static const std::vector<FigureField> fields = {
      {"reference_dice", "reference", "dice", "Dice (all films)", false,
       [](Figures& f) -> double& { return f.reference_dice; },
       [](FigureEstimates& e) -> Estimate& { return e.reference_dice; }},
      {"reference_pixel_sensitivity", "reference", "pixel_sensitivity", "pixel sensitivity", false,
       [](Figures& f) -> double& { return f.reference_pixel_sensitivity; },
       [](FigureEstimates& e) -> Estimate& { return e.reference_pixel_sensitivity; }},
      {"lesion_dice", "lesion", "dice", "Dice (films with masses)", false,
       [](Figures& f) -> double& { return f.lesion_dice; },
       [](FigureEstimates& e) -> Estimate& { return e.lesion_dice; }},
      {"lesion_sensitivity", "lesion", "lesion_sensitivity", "lesion sensitivity", false,
       [](Figures& f) -> double& { return f.lesion_sensitivity; },
       [](FigureEstimates& e) -> Estimate& { return e.lesion_sensitivity; }},
      {"false_positives_per_image", "lesion", "false_positives_per_image",
       "false positives per image", false,
       [](Figures& f) -> double& { return f.false_positives_per_image; },
       [](FigureEstimates& e) -> Estimate& { return e.false_positives_per_image; }},
      {"accuracy", "classification", "accuracy", "accuracy", true,
       [](Figures& f) -> double& { return f.classification.accuracy; },
       [](FigureEstimates& e) -> Estimate& { return e.accuracy; }},
      {"auc", "classification", "auc", "AUC", true,
       [](Figures& f) -> double& { return f.classification.auc; },
       [](FigureEstimates& e) -> Estimate& { return e.auc; }},
      {"f1", "classification", "f1", "F1", true,
       [](Figures& f) -> double& { return f.classification.f1; },
       [](FigureEstimates& e) -> Estimate& { return e.f1; }},
      {"precision", "classification", "precision", "precision", true,
       [](Figures& f) -> double& { return f.classification.precision; },
       [](FigureEstimates& e) -> Estimate& { return e.precision; }},
      {"recall", "classification", "recall", "recall", true,
       [](Figures& f) -> double& { return f.classification.recall; },
       [](FigureEstimates& e) -> Estimate& { return e.recall; }},
  };
  return fields;
}

nlohmann::json json_number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
}

std::string table_cell(double value) {
  if (!std::isfinite(value)) return "—";
  std::ostringstream text;
  text << std::fixed << std::setprecision(3) << value;
  return text.str();
}

nlohmann::json estimate_json(const Estimate& e) {
  return {
      {"value", json_number(e.value)}, {"low", json_number(e.low)}, {"high", json_number(e.high)}};
}

nlohmann::json figures_json(Figures figures) {
  nlohmann::json object = nlohmann::json::object();
  for (const FigureField& field : figure_fields())
    object[field.key] = json_number(field.of(figures));
  return object;
}

std::string estimate_cell(const Estimate& e) {
  return table_cell(e.value) + " [" + table_cell(e.low) + ", " + table_cell(e.high) + "]";
}

}  // namespace detail

namespace {

using detail::estimate_cell;
using detail::estimate_json;
using detail::figure_fields;
using detail::FigureField;
using detail::figures_json;
using detail::json_number;
using detail::table_cell;
using nlohmann::json;

// {"reference": {"dice": {...}, ...}, "lesion": {...}, "classification": {...}}
json estimates_json(FigureEstimates estimates) {
  json model = json::object();
  for (const FigureField& field : figure_fields())
    model[field.protocol][field.name] = estimate_json(field.estimate(estimates));
  return model;
}

json curve_json(const std::vector<CurvePoint>& curve) {
  json points = json::array();
  for (const CurvePoint& p : curve) {
    points.push_back({{"x", json_number(p.x)},
                      {"y", json_number(p.y)},
                      {"threshold", json_number(p.threshold)}});
  }
  return points;
}

// The films' figures with every image called `probability`: the classifier baselines.
Figures with_probability(std::vector<FilmScore> films, double probability) {
  for (FilmScore& film : films) film.mass_probability = probability;
  return summarize(films);
}

}  // namespace

EvaluationReport build_report(std::vector<FilmScore> films, const std::string& split, int head,
                              int rounds, uint64_t seed) {
  EvaluationReport report;
  report.split = split;
  report.head = head;
  report.films = static_cast<int>(films.size());
  report.bootstrap_rounds = rounds;
  std::set<std::string> patients;
  std::vector<double> probabilities;
  std::vector<int> labels;
  std::vector<FilmScore> empty;
  for (const FilmScore& film : films) {
    report.films_with_mass += film.has_mass;
    report.masses += film.lesions.empty() ? 0 : film.lesions.front().masses;
    patients.insert(film.patient);
    probabilities.push_back(film.mass_probability);
    labels.push_back(film.has_mass ? 1 : 0);
    empty.push_back(score_empty_prediction(film));
  }
  report.patients = static_cast<int>(patients.size());
  report.model = bootstrap(films, rounds, seed);
  report.empty_mask = summarize(empty);
  report.all_negative = with_probability(films, 0);
  report.all_positive = with_probability(films, 1);
  report.roc = roc_curve(probabilities, labels);
  report.froc = froc_curve(films);
  report.scored = std::move(films);
  return report;
}

std::string reports_json(const std::vector<EvaluationReport>& reports) {
  json all = json::array();
  for (const EvaluationReport& r : reports) {
    all.push_back(
        {{"split", r.split},
         {"head", r.head},
         {"films", r.films},
         {"films_with_mass", r.films_with_mass},
         {"masses", r.masses},
         {"patients", r.patients},
         {"bootstrap", {{"rounds", r.bootstrap_rounds}, {"unit", "patient"}, {"interval", 0.95}}},
         {"operating_threshold", kOperatingThreshold},
         {"model", estimates_json(r.model)},
         {"baselines",
          {{"empty_mask", figures_json(r.empty_mask)},
           {"all_negative", figures_json(r.all_negative)},
           {"all_positive", figures_json(r.all_positive)}}},
         {"roc", curve_json(r.roc)},
         {"froc", curve_json(r.froc)},
         {"left_out",
          {{"films", r.films_left_out}, {"masses", r.masses_left_out}, {"why", r.left_out}}}});
  }
  return json{{"reports", all}}.dump(2) + "\n";
}

std::string report_markdown(const EvaluationReport& r) {
  FigureEstimates model = r.model;
  Figures empty = r.empty_mask, negative = r.all_negative, positive = r.all_positive;
  std::ostringstream md;
  md << "### Split `" << r.split << "`, head " << r.head << "\n\n"
     << r.films << " films (" << r.films_with_mass << " with masses, " << r.masses << " masses), "
     << r.patients << " patients. Model figures with 95 % bootstrap intervals over "
     << "patients (" << r.bootstrap_rounds << " resamples); threshold " << kOperatingThreshold
     << ".\n\n";
  if (r.films_left_out > 0 || r.masses_left_out > 0) {
    md << "**Left out while loading the dataset** (from any split): " << r.films_left_out
       << " films, " << r.masses_left_out << " masses.\n\n";
    for (const std::string& why : r.left_out) md << "- " << why << "\n";
    md << "\n";
  }
  md << "| protocol | figure | model | all-empty mask | all-negative | all-positive |\n"
     << "|---|---|---|---|---|---|\n";
  for (const FigureField& field : figure_fields()) {
    md << "| " << field.protocol << " | " << field.label << " | "
       << estimate_cell(field.estimate(model)) << " | ";
    if (field.classifier) {
      md << "| " << table_cell(field.of(negative)) << " | " << table_cell(field.of(positive))
         << " |\n";
    } else {
      md << table_cell(field.of(empty)) << " | | |\n";
    }
  }
  md << "\n— : undefined on these films (e.g. precision with no positive call).\n";
  return md.str();
}

std::string films_csv(const EvaluationReport& r) {
  std::ostringstream csv;
  csv << "id,patient,has_mass,masses,mass_probability,dice,pixel_sensitivity,masses_found,"
         "false_positives\n";
  const auto at = static_cast<size_t>(operating_threshold_index());
  for (const FilmScore& film : r.scored) {
    const LesionCount& count = film.lesions[at];
    csv << film.id << "," << film.patient << "," << (film.has_mass ? 1 : 0) << "," << count.masses
        << "," << film.mass_probability << "," << film.dice << "," << film.pixel_sensitivity << ","
        << count.masses_found << "," << count.false_positives << "\n";
  }
  return csv.str();
}

std::string curve_svg(const std::vector<CurvePoint>& points, const std::string& title,
                      const std::string& x_label, const std::string& y_label, double x_max) {
  Chart chart;
  chart.x_label = x_label;
  chart.y_label = y_label;
  chart.x_min = 0;
  chart.x_max = x_max > 0 ? x_max : 1;
  chart.y_min = 0;
  chart.y_max = 1;
  // Unnamed, so without a legend: one chart under its title fills 360 x 360, plot 50..310.
  ChartSeries curve;
  for (const CurvePoint& p : points) curve.points.emplace_back(p.x, p.y);
  chart.series.push_back(std::move(curve));
  return charts_svg({chart}, 1, title);
}

std::vector<uint8_t> overlay_rgb(const std::vector<uint8_t>& grey, const uint8_t* truth,
                                 const uint8_t* predicted, int rows, int cols) {
  std::vector<uint8_t> rgb(grey.size() * 3);
  for (size_t i = 0; i < grey.size(); ++i) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
  auto outline = [&](const uint8_t* mask, uint8_t red, uint8_t green) {
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const int at = r * cols + c;
        if (mask[at] == 0) continue;
        const bool edge = r == 0 || c == 0 || r == rows - 1 || c == cols - 1 ||
                          mask[at - cols] == 0 || mask[at + cols] == 0 || mask[at - 1] == 0 ||
                          mask[at + 1] == 0;
        if (!edge) continue;
        rgb[3 * at] = red;
        rgb[3 * at + 1] = green;
        rgb[3 * at + 2] = 0;
      }
    }
  };
  outline(truth, 255, 0);
  outline(predicted, 0, 255);
  return rgb;
}

}  // namespace hds::scoring

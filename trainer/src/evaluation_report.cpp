#include "hds/trainer/evaluation_report.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace hds::trainer {

namespace {

using nlohmann::json;

json number(double value) { return std::isfinite(value) ? json(value) : json(); }

json figures_json(const Figures& f) {
  return {{"reference_dice", number(f.reference_dice)},
          {"reference_pixel_sensitivity", number(f.reference_pixel_sensitivity)},
          {"lesion_dice", number(f.lesion_dice)},
          {"lesion_sensitivity", number(f.lesion_sensitivity)},
          {"false_positives_per_image", number(f.false_positives_per_image)},
          {"accuracy", number(f.classification.accuracy)},
          {"auc", number(f.classification.auc)},
          {"f1", number(f.classification.f1)},
          {"precision", number(f.classification.precision)},
          {"recall", number(f.classification.recall)}};
}

json estimate_json(const Estimate& e) {
  return {{"value", number(e.value)}, {"low", number(e.low)}, {"high", number(e.high)}};
}

json curve_json(const std::vector<CurvePoint>& curve) {
  json points = json::array();
  for (const CurvePoint& p : curve) {
    points.push_back({{"x", number(p.x)}, {"y", number(p.y)}, {"threshold", number(p.threshold)}});
  }
  return points;
}

std::string cell(double value) {
  if (!std::isfinite(value)) return "—";
  std::ostringstream text;
  text << std::fixed << std::setprecision(3) << value;
  return text.str();
}

std::string cell(const Estimate& e) {
  return cell(e.value) + " [" + cell(e.low) + ", " + cell(e.high) + "]";
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
    const FigureEstimates& m = r.model;
    all.push_back(
        {{"split", r.split},
         {"head", r.head},
         {"films", r.films},
         {"films_with_mass", r.films_with_mass},
         {"masses", r.masses},
         {"patients", r.patients},
         {"bootstrap", {{"rounds", r.bootstrap_rounds}, {"unit", "patient"}, {"interval", 0.95}}},
         {"operating_threshold", 0.5},
         {"model",
          {{"reference",
            {{"dice", estimate_json(m.reference_dice)},
             {"pixel_sensitivity", estimate_json(m.reference_pixel_sensitivity)}}},
           {"lesion",
            {{"dice", estimate_json(m.lesion_dice)},
             {"lesion_sensitivity", estimate_json(m.lesion_sensitivity)},
             {"false_positives_per_image", estimate_json(m.false_positives_per_image)}}},
           {"classification",
            {{"accuracy", estimate_json(m.accuracy)},
             {"auc", estimate_json(m.auc)},
             {"f1", estimate_json(m.f1)},
             {"precision", estimate_json(m.precision)},
             {"recall", estimate_json(m.recall)}}}}},
         {"baselines",
          {{"empty_mask", figures_json(r.empty_mask)},
           {"all_negative", figures_json(r.all_negative)},
           {"all_positive", figures_json(r.all_positive)}}},
         {"roc", curve_json(r.roc)},
         {"froc", curve_json(r.froc)}});
  }
  return json{{"reports", all}}.dump(2) + "\n";
}

std::string report_markdown(const EvaluationReport& r) {
  const FigureEstimates& m = r.model;
  std::ostringstream md;
  md << "### Split `" << r.split << "`, head " << r.head << "\n\n"
     << r.films << " films (" << r.films_with_mass << " with masses, " << r.masses << " masses), "
     << r.patients << " patients. Model figures with 95 % bootstrap intervals over "
     << "patients (" << r.bootstrap_rounds << " resamples); threshold 0.5.\n\n"
     << "| protocol | figure | model | all-empty mask | all-negative | all-positive |\n"
     << "|---|---|---|---|---|---|\n";
  auto segmentation = [&](const char* protocol, const char* name, const Estimate& e, double empty) {
    md << "| " << protocol << " | " << name << " | " << cell(e) << " | " << cell(empty)
       << " | | |\n";
  };
  auto classification = [&](const char* name, const Estimate& e, double negative, double positive) {
    md << "| classification | " << name << " | " << cell(e) << " | | " << cell(negative) << " | "
       << cell(positive) << " |\n";
  };
  segmentation("reference", "Dice (all films)", m.reference_dice, r.empty_mask.reference_dice);
  segmentation("reference", "pixel sensitivity", m.reference_pixel_sensitivity,
               r.empty_mask.reference_pixel_sensitivity);
  segmentation("lesion", "Dice (films with masses)", m.lesion_dice, r.empty_mask.lesion_dice);
  segmentation("lesion", "lesion sensitivity", m.lesion_sensitivity,
               r.empty_mask.lesion_sensitivity);
  segmentation("lesion", "false positives per image", m.false_positives_per_image,
               r.empty_mask.false_positives_per_image);
  const ClassificationFigures& n = r.all_negative.classification;
  const ClassificationFigures& p = r.all_positive.classification;
  classification("accuracy", m.accuracy, n.accuracy, p.accuracy);
  classification("AUC", m.auc, n.auc, p.auc);
  classification("F1", m.f1, n.f1, p.f1);
  classification("precision", m.precision, n.precision, p.precision);
  classification("recall", m.recall, n.recall, p.recall);
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
  constexpr double kWidth = 360, kHeight = 360, kMargin = 50;
  const double span = x_max > 0 ? x_max : 1;
  auto x_of = [&](double x) { return kMargin + (kWidth - 2 * kMargin) * std::min(x, span) / span; };
  auto y_of = [&](double y) { return kHeight - kMargin - (kHeight - 2 * kMargin) * y; };
  std::ostringstream svg;
  svg << std::fixed << std::setprecision(1) << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << kWidth << "\" height=\"" << kHeight << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"20\" text-anchor=\"middle\">" << title << "</text>\n"
      << "<rect x=\"" << kMargin << "\" y=\"" << kMargin << "\" width=\"" << kWidth - 2 * kMargin
      << "\" height=\"" << kHeight - 2 * kMargin << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"" << kHeight - 12 << "\" text-anchor=\"middle\">"
      << x_label << " (0 to " << std::setprecision(2) << span << ")</text>\n"
      << std::setprecision(1) << "<text x=\"14\" y=\"" << kHeight / 2
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " << kHeight / 2 << ")\">" << y_label
      << " (0 to 1)</text>\n"
      << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (const CurvePoint& p : points) {
    if (std::isfinite(p.x) && std::isfinite(p.y)) svg << x_of(p.x) << "," << y_of(p.y) << " ";
  }
  svg << "\"/>\n</svg>\n";
  return svg.str();
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

}  // namespace hds::trainer

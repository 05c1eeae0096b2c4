// What `hds-trainer eval` writes, built from scored films (scoring.h), without LibTorch: the
// figures of both protocols with their bootstrap intervals beside the trivial baselines of the
// same films, the ROC and FROC curves, and per-film rows; as JSON, a Markdown table, SVG curves
// and CSV. Overlays show a film with the truth's outline in red and the prediction's in green.
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hds/scoring/scoring.h"

namespace hds::scoring {

struct EvaluationReport {
  std::string split;  // "val", "test" or "all"
  int head = 5;       // the head whose outputs were scored
  int films = 0;
  int films_with_mass = 0;
  int masses = 0;
  int patients = 0;
  int bootstrap_rounds = 0;
  FigureEstimates model;
  // The same films scored as an all-empty mask, an all-negative and an all-positive classifier.
  Figures empty_mask;
  Figures all_negative;
  Figures all_positive;
  std::vector<CurvePoint> roc;
  std::vector<CurvePoint> froc;
  std::vector<FilmScore> scored;
  // What loading the dataset left out (data.on_bad_sample SKIP, unusable annotations), in any of
  // its splits: counts, and one line per film or mass naming it and why. The report states them,
  // so that "N films" is never read as the whole split when some could not be read.
  int films_left_out = 0;
  int masses_left_out = 0;
  std::vector<std::string> left_out;
};

// Summarises `films` (bootstrap over patients, `rounds` resamples, seeded) with its baselines.
EvaluationReport build_report(std::vector<FilmScore> films, const std::string& split, int head,
                              int rounds, uint64_t seed);

// {"reports": [...]} with every figure, interval, baseline and curve; undefined figures are null.
std::string reports_json(const std::vector<EvaluationReport>& reports);
// A Markdown table per report: each figure with its interval beside the baselines.
std::string report_markdown(const EvaluationReport& report);
// One row per film: id, patient, has_mass, masses, mass_probability, dice, pixel_sensitivity,
// masses_found and false_positives at 0.5.
std::string films_csv(const EvaluationReport& report);
// A line chart of `points` (x in [0, x_max], y in [0, 1]) as a standalone SVG document.
std::string curve_svg(const std::vector<CurvePoint>& points, const std::string& title,
                      const std::string& x_label, const std::string& y_label, double x_max);

// An RGB image (rows x cols x 3) of the grey film `grey` (0..255) with the outline of `truth` in
// red and of `predicted` in green (green where both outlines meet). An outline pixel is a mask
// pixel with a 4-neighbour outside the mask or on the image's edge.
std::vector<uint8_t> overlay_rgb(const std::vector<uint8_t>& grey, const uint8_t* truth,
                                 const uint8_t* predicted, int rows, int cols);

}  // namespace hds::scoring

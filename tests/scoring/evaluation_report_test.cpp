// The evaluation's report: overlay colours at known pixels, baselines computed from the same
// films, undefined figures as JSON null, and the CSV and SVG forms.
#include "hds/scoring/evaluation_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hds::scoring {
namespace {

TEST(Overlay, outlines_truth_in_red_and_prediction_in_green_over_the_grey_film) {
  constexpr int kRows = 5, kCols = 5;
  const std::vector<uint8_t> grey(kRows * kCols, 100);
  std::vector<uint8_t> truth(kRows * kCols, 0), predicted(kRows * kCols, 0);
  for (int r = 1; r <= 3; ++r) {
    for (int c = 1; c <= 3; ++c) truth[r * kCols + c] = 1;  // a 3x3 square: centre is inside
  }
  predicted[0 * kCols + 4] = 1;  // one pixel in the corner: its own outline
  const auto rgb = overlay_rgb(grey, truth.data(), predicted.data(), kRows, kCols);
  ASSERT_EQ(rgb.size(), 3u * kRows * kCols);
  auto pixel = [&](int r, int c) {
    const size_t at = 3 * static_cast<size_t>(r * kCols + c);
    return std::vector<int>{rgb[at], rgb[at + 1], rgb[at + 2]};
  };
  EXPECT_EQ(pixel(1, 1), (std::vector<int>{255, 0, 0}));  // truth outline
  EXPECT_EQ(pixel(3, 2), (std::vector<int>{255, 0, 0}));
  EXPECT_EQ(pixel(2, 2), (std::vector<int>{100, 100, 100}));  // inside the square: the film
  EXPECT_EQ(pixel(0, 0), (std::vector<int>{100, 100, 100}));  // outside both
  EXPECT_EQ(pixel(0, 4), (std::vector<int>{0, 255, 0}));      // prediction outline
}

// Two films of one patient and one of another: a found mass, a missed mass, a clean film.
std::vector<FilmScore> films() {
  const std::vector<uint8_t> mass = {1, 1, 0, 0};
  const std::vector<uint8_t> none = {0, 0, 0, 0};
  const std::vector<float> found = {0.9f, 0.9f, 0, 0};
  const std::vector<float> nothing = {0, 0, 0, 0};
  return {score_film("a", "p1", found.data(), mass.data(), 2, 2, 0.8),
          score_film("b", "p1", nothing.data(), mass.data(), 2, 2, 0.3),
          score_film("c", "p2", nothing.data(), none.data(), 2, 2, 0.1)};
}

TEST(Report, counts_the_films_and_scores_the_baselines_on_the_same_films) {
  const EvaluationReport report = build_report(films(), "val", 5, 100, 3);
  EXPECT_EQ(report.films, 3);
  EXPECT_EQ(report.films_with_mass, 2);
  EXPECT_EQ(report.masses, 2);
  EXPECT_EQ(report.patients, 2);
  EXPECT_DOUBLE_EQ(report.model.reference_dice.value, (1 + 0 + 1) / 3.0);
  EXPECT_DOUBLE_EQ(report.empty_mask.reference_dice, 1 / 3.0);  // only the clean film
  EXPECT_DOUBLE_EQ(report.empty_mask.lesion_sensitivity, 0);
  EXPECT_DOUBLE_EQ(report.all_negative.classification.accuracy, 1 / 3.0);
  EXPECT_DOUBLE_EQ(report.all_positive.classification.accuracy, 2 / 3.0);
  EXPECT_DOUBLE_EQ(report.all_positive.classification.recall, 1);
  EXPECT_EQ(report.roc.size(), 4u);  // origin and three distinct scores
  EXPECT_EQ(report.froc.size(), froc_thresholds().size());
}

TEST(Report, writes_undefined_figures_as_null_and_every_film_as_a_row) {
  const EvaluationReport report = build_report(films(), "test", 5, 50, 1);
  const auto json = nlohmann::json::parse(reports_json({report}));
  const auto& baselines = json.at("reports").at(0).at("baselines");
  EXPECT_TRUE(baselines.at("all_negative").at("precision").is_null());  // no positive call
  EXPECT_DOUBLE_EQ(baselines.at("all_positive").at("precision").get<double>(), 2 / 3.0);
  EXPECT_EQ(json.at("reports").at(0).at("bootstrap").at("unit"), "patient");
  const std::string csv = films_csv(report);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 films
  EXPECT_NE(csv.find("\nb,p1,1,1,0.3,0,0,0,0\n"), std::string::npos) << csv;
  const std::string markdown = report_markdown(report);
  EXPECT_NE(markdown.find("| classification | precision |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| — |"), std::string::npos) << markdown;
}

TEST(CurveSvg, maps_the_points_into_the_plot_and_names_the_axes) {
  const std::string svg =
      curve_svg({{0, 0, 1}, {0.5, 1, 0.5}, {1, 1, 0}}, "ROC", "false-positive rate", "TPR", 1);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  // Plot area 50..310 in both directions; y grows downwards.
  EXPECT_NE(svg.find("points=\"50.0,310.0 180.0,50.0 310.0,50.0 \""), std::string::npos) << svg;
  EXPECT_NE(svg.find("false-positive rate"), std::string::npos);
}

}  // namespace
}  // namespace hds::scoring

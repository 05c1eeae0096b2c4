// The evaluation's figures against hand computations on tiny masks and score lists: Dice and
// pixel sensitivity with empty masks, 8-connected components (diagonal contact joins, a gap
// separates), lesion counting, the FROC sweep, classification with ties and with one class, the
// baselines, and bootstrap intervals (seeded, over patients).
#include "hds/scoring/scoring.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace hds::scoring {
namespace {

// A mask from rows of '.' and '#'.
std::vector<uint8_t> mask_of(const std::vector<std::string>& rows) {
  std::vector<uint8_t> mask;
  for (const std::string& row : rows) {
    for (char c : row) mask.push_back(c == '#');
  }
  return mask;
}

// A probability map: '.' is 0, a digit d is d / 10.
std::vector<float> map_of(const std::vector<std::string>& rows) {
  std::vector<float> map;
  for (const std::string& row : rows) {
    for (char c : row) map.push_back(c == '.' ? 0.f : static_cast<float>(c - '0') / 10.f);
  }
  return map;
}

TEST(Dice, counts_twice_the_overlap_over_both_areas_and_is_one_when_both_are_empty) {
  const auto predicted = mask_of({"##..", "##.."});  // 4 pixels
  const auto truth = mask_of({".##.", ".##."});      // 4 pixels, 2 shared
  EXPECT_DOUBLE_EQ(dice(predicted.data(), truth.data(), 8), 2.0 * 2 / 8);
  const auto empty = mask_of({"....", "...."});
  EXPECT_DOUBLE_EQ(dice(empty.data(), empty.data(), 8), 1.0);
  EXPECT_DOUBLE_EQ(dice(empty.data(), truth.data(), 8), 0.0);
}

TEST(PixelSensitivity, is_the_share_of_mass_pixels_found_and_one_without_mass) {
  const auto predicted = mask_of({"##..", "#..."});
  const auto truth = mask_of({".##.", ".##."});  // 4 mass pixels, 1 predicted
  EXPECT_DOUBLE_EQ(pixel_sensitivity(predicted.data(), truth.data(), 8), 0.25);
  const auto empty = mask_of({"....", "...."});
  EXPECT_DOUBLE_EQ(pixel_sensitivity(predicted.data(), empty.data(), 8), 1.0);
}

TEST(ConnectedComponents, diagonal_neighbours_join_and_a_gap_separates) {
  const auto mask = mask_of({
      "#...#",
      ".#..#",
      "..#..",
      ".....",
      "##..#",
  });
  const Components found = connected_components(mask.data(), 5, 5);
  ASSERT_EQ(found.components.size(), 4u);
  // Raster order of first pixels: the diagonal (0,0), the right column (0,4), the bottom left
  // pair, the bottom right pixel.
  EXPECT_EQ(found.components[0].pixels, 3);
  EXPECT_EQ(found.components[0].top, 0);
  EXPECT_EQ(found.components[0].left, 0);
  EXPECT_EQ(found.components[0].bottom, 2);
  EXPECT_EQ(found.components[0].right, 2);
  EXPECT_EQ(found.components[1].pixels, 2);
  EXPECT_EQ(found.components[2].pixels, 2);
  EXPECT_EQ(found.components[3].pixels, 1);
  EXPECT_EQ(found.labels[0], 1);
  EXPECT_EQ(found.labels[2 * 5 + 2], 1);
  EXPECT_EQ(found.labels[4 * 5 + 4], 4);
  EXPECT_EQ(found.labels[3 * 5 + 0], 0);
}

TEST(ComponentShapes, centre_and_longest_extent_by_hand_with_and_without_pixel_spacing) {
  const auto mask = mask_of({
      "........",
      ".####...",
      ".####...",
      ".####..#",
      "........",
      "#.......",
      ".#......",
      "..#.....",
  });
  const Components found = connected_components(mask.data(), 8, 8);
  ASSERT_EQ(found.components.size(), 3u);
  const std::vector<ComponentShape> unit = component_shapes(found, 8, 8);
  // The 4 x 3 block at rows 1-3, columns 1-4: centre (3, 2.5), corners (1, 1) to (5, 4): 5.
  EXPECT_DOUBLE_EQ(unit[0].centre_x, 3.0);
  EXPECT_DOUBLE_EQ(unit[0].centre_y, 2.5);
  EXPECT_DOUBLE_EQ(unit[0].longest_extent, 5.0);
  EXPECT_DOUBLE_EQ(std::hypot(unit[0].x1 - unit[0].x0, unit[0].y1 - unit[0].y0), 5.0);
  // A single pixel reaches across its diagonal.
  EXPECT_DOUBLE_EQ(unit[1].centre_x, 7.5);
  EXPECT_DOUBLE_EQ(unit[1].longest_extent, std::sqrt(2.0));
  // The diagonal of three pixels from (0, 5) to (3, 8).
  EXPECT_DOUBLE_EQ(unit[2].centre_x, 1.5);
  EXPECT_DOUBLE_EQ(unit[2].centre_y, 6.5);
  EXPECT_DOUBLE_EQ(unit[2].longest_extent, 3 * std::sqrt(2.0));
  // Spacing 0.5 mm across, 2 mm down: the block is 2 mm wide and 6 mm high, the diagonal
  // sqrt(1.5^2 + 6^2); the endpoints stay in pixel coordinates.
  const std::vector<ComponentShape> spaced = component_shapes(found, 8, 8, 0.5, 2.0);
  EXPECT_DOUBLE_EQ(spaced[0].longest_extent, std::hypot(2.0, 6.0));
  EXPECT_DOUBLE_EQ(spaced[2].longest_extent, std::hypot(1.5, 6.0));
  EXPECT_DOUBLE_EQ(std::abs(spaced[2].y1 - spaced[2].y0), 3.0);
}

TEST(ComponentShapes, the_farthest_pair_depends_on_the_spacing) {
  // An upside-down T: across the bar is longest at unit spacing; with rows ten times farther
  // apart, from the stem's top to the bar's far end is.
  const auto mask = mask_of({
      "...#...",
      "...#...",
      "#######",
  });
  const Components found = connected_components(mask.data(), 3, 7);
  ASSERT_EQ(found.components.size(), 1u);
  const ComponentShape unit = component_shapes(found, 3, 7)[0];
  EXPECT_DOUBLE_EQ(unit.longest_extent, std::hypot(7.0, 1.0));  // (0, 2)-(7, 3)
  EXPECT_DOUBLE_EQ(std::abs(unit.y1 - unit.y0), 1.0);
  const ComponentShape tall = component_shapes(found, 3, 7, 1, 10)[0];
  EXPECT_DOUBLE_EQ(tall.longest_extent, std::hypot(4.0, 30.0));  // (3, 0)-(7, 3) or (4, 0)-(0, 3)
  EXPECT_DOUBLE_EQ(std::abs(tall.y1 - tall.y0), 3.0);
}

TEST(CountLesions, a_mass_counts_once_found_and_a_component_touching_none_is_a_false_positive) {
  const auto truth = mask_of({
      "##....##",
      "##....##",
      "........",
  });
  // One pixel on the left mass; three pixels joined diagonally over the right mass; a pair on
  // the background (diagonal to a mass pixel, but sharing none).
  const auto predicted = mask_of({
      ".#...#.#",
      "......#.",
      "..##....",
  });
  const LesionCount count = count_lesions(predicted.data(), truth.data(), 3, 8);
  EXPECT_EQ(count.masses, 2);
  EXPECT_EQ(count.masses_found, 2);
  EXPECT_EQ(count.false_positives, 1);
}

TEST(CountLesions, touching_masses_are_one_lesion) {
  const auto truth = mask_of({"##..", "..##"});  // diagonal contact: one component
  const auto predicted = mask_of({"....", "...#"});
  const LesionCount count = count_lesions(predicted.data(), truth.data(), 2, 4);
  EXPECT_EQ(count.masses, 1);
  EXPECT_EQ(count.masses_found, 1);
  EXPECT_EQ(count.false_positives, 0);
}

TEST(ScoreFilm, thresholds_the_map_above_each_froc_threshold) {
  const auto& thresholds = froc_thresholds();
  ASSERT_EQ(thresholds.size(), 19u);
  EXPECT_DOUBLE_EQ(thresholds[static_cast<size_t>(operating_threshold_index())], 0.5);
  const auto truth = mask_of({"##......", "##......"});
  // The mass at 0.9, a false positive at 0.3 (above 0.05..0.25, not above 0.3).
  const auto map = map_of({"99....3.", "99......"});
  const FilmScore score = score_film("f", "p", map.data(), truth.data(), 2, 8, 0.7);
  EXPECT_TRUE(score.has_mass);
  EXPECT_DOUBLE_EQ(score.dice, 1.0);
  EXPECT_DOUBLE_EQ(score.pixel_sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(score.mass_probability, 0.7);
  ASSERT_EQ(score.lesions.size(), 19u);
  for (size_t k = 0; k < thresholds.size(); ++k) {
    const double t = thresholds[k];
    EXPECT_EQ(score.lesions[k].masses, 1) << t;
    EXPECT_EQ(score.lesions[k].masses_found, t < 0.9 - 1e-6 ? 1 : 0) << t;
    // 0.3f is a little above 0.3 in float: the pixel counts up to and including t = 0.3.
    EXPECT_EQ(score.lesions[k].false_positives, t < 0.3 + 1e-6 ? 1 : 0) << t;
  }
}

TEST(ScoreFilm, the_empty_prediction_scores_as_an_all_zero_map) {
  const auto truth = mask_of({"##..", "...."});
  const auto map = map_of({"9...", "..6."});
  const FilmScore film = score_film("f", "p", map.data(), truth.data(), 2, 4, 0.8);
  const std::vector<float> zeros(8, 0.f);
  const FilmScore expected = score_film("f", "p", zeros.data(), truth.data(), 2, 4, 0.0);
  const FilmScore empty = score_empty_prediction(film);
  EXPECT_EQ(empty.dice, expected.dice);
  EXPECT_EQ(empty.pixel_sensitivity, expected.pixel_sensitivity);
  EXPECT_EQ(empty.mass_probability, 0.0);
  for (size_t k = 0; k < empty.lesions.size(); ++k) {
    EXPECT_EQ(empty.lesions[k].masses, expected.lesions[k].masses);
    EXPECT_EQ(empty.lesions[k].masses_found, expected.lesions[k].masses_found);
    EXPECT_EQ(empty.lesions[k].false_positives, expected.lesions[k].false_positives);
  }
}

TEST(RocAuc, counts_ties_as_one_half_and_is_undefined_with_one_class) {
  // Positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5) 1, (0.9>0.1) 1, (0.5=0.5) 0.5,
  // (0.5>0.1) 1: 3.5 of 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.5, 0.5, 0.1}, {1, 1, 0, 0}), 3.5 / 4);
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.3, 0.3, 0.3}, {1, 0, 1}), 0.5);
  EXPECT_TRUE(std::isnan(roc_auc({0.3, 0.7}, {1, 1})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(RocCurve, steps_through_each_distinct_score_from_origin_to_one_one) {
  const auto curve = roc_curve({0.9, 0.5, 0.5, 0.1}, {1, 1, 0, 0});
  ASSERT_EQ(curve.size(), 4u);
  EXPECT_DOUBLE_EQ(curve[0].x, 0);
  EXPECT_DOUBLE_EQ(curve[0].y, 0);
  EXPECT_DOUBLE_EQ(curve[1].x, 0);  // 0.9: one positive
  EXPECT_DOUBLE_EQ(curve[1].y, 0.5);
  EXPECT_DOUBLE_EQ(curve[2].x, 0.5);  // 0.5: a positive and a negative at once
  EXPECT_DOUBLE_EQ(curve[2].y, 1);
  EXPECT_DOUBLE_EQ(curve[2].threshold, 0.5);
  EXPECT_DOUBLE_EQ(curve[3].x, 1);
  EXPECT_DOUBLE_EQ(curve[3].y, 1);
  EXPECT_TRUE(roc_curve({0.2, 0.4}, {0, 0}).empty());
}

TEST(Classify, counts_at_the_threshold_and_leaves_undefined_figures_nan) {
  // Called positive: 0.9 (tp), 0.6 (fp); negative: 0.5 (fn, not above 0.5), 0.2 (tn).
  const auto figures = classify({0.9, 0.6, 0.5, 0.2}, {1, 0, 1, 0});
  EXPECT_DOUBLE_EQ(figures.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(figures.precision, 0.5);
  EXPECT_DOUBLE_EQ(figures.recall, 0.5);
  EXPECT_DOUBLE_EQ(figures.f1, 2.0 / 4);
  EXPECT_DOUBLE_EQ(figures.auc, 3.0 / 4);
  // An all-negative classifier: no positive call, so no precision; F1 and recall 0.
  const auto negative = classify({0, 0, 0}, {1, 0, 0});
  EXPECT_TRUE(std::isnan(negative.precision));
  EXPECT_DOUBLE_EQ(negative.recall, 0);
  EXPECT_DOUBLE_EQ(negative.f1, 0);
  EXPECT_DOUBLE_EQ(negative.accuracy, 2.0 / 3);
  EXPECT_DOUBLE_EQ(negative.auc, 0.5);
  // No positive film at all: recall and AUC undefined.
  const auto no_positives = classify({0.7, 0.1}, {0, 0});
  EXPECT_TRUE(std::isnan(no_positives.recall));
  EXPECT_TRUE(std::isnan(no_positives.auc));
  EXPECT_DOUBLE_EQ(no_positives.accuracy, 0.5);
}

// Three films: a mass found with one false positive, a mass missed, a clean mass-free film.
std::vector<FilmScore> three_films() {
  const auto mass = mask_of({"##....", "##...."});
  const auto none = mask_of({"......", "......"});
  const auto found = map_of({"99..9.", "99...."});
  const auto missed = map_of({"......", "......"});
  return {score_film("a", "p1", found.data(), mass.data(), 2, 6, 0.9),
          score_film("b", "p2", missed.data(), mass.data(), 2, 6, 0.4),
          score_film("c", "p2", missed.data(), none.data(), 2, 6, 0.2)};
}

TEST(Summarize, gives_both_protocols_by_hand) {
  const Figures figures = summarize(three_films());
  // Dice per film: a 2*4/(5+4) = 8/9, b 0, c 1 (empty on empty).
  EXPECT_DOUBLE_EQ(figures.reference_dice, (8.0 / 9 + 0 + 1) / 3);
  EXPECT_DOUBLE_EQ(figures.lesion_dice, (8.0 / 9 + 0) / 2);
  EXPECT_DOUBLE_EQ(figures.reference_pixel_sensitivity, (1 + 0 + 1) / 3.0);
  EXPECT_DOUBLE_EQ(figures.lesion_sensitivity, 0.5);             // 1 of 2 masses
  EXPECT_DOUBLE_EQ(figures.false_positives_per_image, 1 / 3.0);  // one on film a
  EXPECT_DOUBLE_EQ(figures.classification.accuracy, 2 / 3.0);    // b (0.4) is missed
  EXPECT_DOUBLE_EQ(figures.classification.auc, 1.0);             // 0.9, 0.4 both above 0.2
}

TEST(Summarize, the_baselines_score_as_their_predictions_say) {
  std::vector<FilmScore> empty;
  for (const FilmScore& film : three_films()) empty.push_back(score_empty_prediction(film));
  const Figures figures = summarize(empty);
  EXPECT_DOUBLE_EQ(figures.reference_dice, 1 / 3.0);  // only the mass-free film scores 1
  EXPECT_DOUBLE_EQ(figures.lesion_dice, 0);
  EXPECT_DOUBLE_EQ(figures.lesion_sensitivity, 0);
  EXPECT_DOUBLE_EQ(figures.false_positives_per_image, 0);
  EXPECT_DOUBLE_EQ(figures.classification.accuracy, 1 / 3.0);  // all called negative
  EXPECT_DOUBLE_EQ(figures.classification.auc, 0.5);
}

TEST(Froc, sums_lesions_over_films_at_each_threshold) {
  const auto curve = froc_curve(three_films());
  ASSERT_EQ(curve.size(), froc_thresholds().size());
  for (const CurvePoint& point : curve) {
    // Everything predicted sits at 0.9: found and false positive below it, nothing at 0.9 and up.
    const bool below = point.threshold < 0.9 - 1e-6;
    EXPECT_DOUBLE_EQ(point.y, below ? 0.5 : 0.0) << point.threshold;
    EXPECT_DOUBLE_EQ(point.x, below ? 1 / 3.0 : 0.0) << point.threshold;
  }
}

TEST(Bootstrap, is_seeded_brackets_the_estimate_and_resamples_whole_patients) {
  const auto films = three_films();
  const FigureEstimates first = bootstrap(films, 200, 7);
  const FigureEstimates again = bootstrap(films, 200, 7);
  EXPECT_EQ(first.reference_dice.low, again.reference_dice.low);
  EXPECT_EQ(first.reference_dice.high, again.reference_dice.high);
  EXPECT_DOUBLE_EQ(first.reference_dice.value, summarize(films).reference_dice);
  EXPECT_LE(first.reference_dice.low, first.reference_dice.value);
  EXPECT_GE(first.reference_dice.high, first.reference_dice.value);
  // Patient p1 holds film a (Dice 8/9), p2 films b and c (0 and 1) which always come together:
  // every resample's mean Dice is a mix of 8/9 and 1/2, so the interval lies within them.
  EXPECT_GE(first.reference_dice.low, 0.5 - 1e-12);
  EXPECT_LE(first.reference_dice.high, 8.0 / 9 + 1e-12);
  // Resamples of p1 alone have no negative film: their AUC is undefined and left out.
  EXPECT_DOUBLE_EQ(first.auc.value, 1.0);
  EXPECT_DOUBLE_EQ(first.auc.low, 1.0);
}

}  // namespace
}  // namespace hds::scoring

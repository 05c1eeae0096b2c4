// The cross-validation and ablation tables read back what the evaluation wrote: figures survive
// the metrics.json round trip, mean ± sample std are the hand-computed ones, undefined figures
// are counted out, and a malformed file is named.
#include "hds/scoring/experiment_tables.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hds/scoring/evaluation_report.h"

namespace hds::scoring {
namespace {

// A fold of two films, one with a mass: the model finds a share `found` of the mass's 4 pixels.
std::string fold_json(int found, double positive_probability) {
  std::vector<uint8_t> mass = {1, 1, 1, 1, 0, 0, 0, 0};
  const std::vector<uint8_t> none(8, 0);
  std::vector<float> prediction(8, 0);
  for (int i = 0; i < found; ++i) prediction[i] = 0.9f;
  const std::vector<float> nothing(8, 0);
  std::vector<FilmScore> films = {
      score_film("a", "p1", prediction.data(), mass.data(), 2, 4, positive_probability),
      score_film("b", "p2", nothing.data(), none.data(), 2, 4, 0.2)};
  return reports_json({build_report(films, "test", 5, 20, 1)});
}

TEST(ExperimentTables, a_fold_reads_back_as_it_was_written) {
  const EvaluatedRun run = parse_evaluated_run("fold-0", "f0/metrics.json", fold_json(2, 0.7));
  EXPECT_EQ(run.split, "test");
  EXPECT_EQ(run.head, 5);
  EXPECT_EQ(run.films, 2);
  EXPECT_EQ(run.films_with_mass, 1);
  EXPECT_EQ(run.patients, 2);
  // Dice of 2 predicted pixels inside a 4-pixel mass: 2*2/(2+4); the clean film scores 1.
  EXPECT_NEAR(run.model.lesion_dice.value, 4.0 / 6, 1e-12);
  EXPECT_NEAR(run.model.reference_dice.value, (4.0 / 6 + 1) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(run.model.accuracy.value, 1);
  EXPECT_DOUBLE_EQ(run.empty_mask.reference_dice, 0.5);
  EXPECT_DOUBLE_EQ(run.all_negative.classification.accuracy, 0.5);
  EXPECT_TRUE(std::isnan(run.all_negative.classification.precision));  // null in the file
}

TEST(ExperimentTables, spread_is_mean_and_sample_std_of_the_defined_values) {
  const Spread s = spread({0.5, 0.7, std::nan(""), 0.9});
  EXPECT_EQ(s.defined, 3);
  EXPECT_NEAR(s.mean, 0.7, 1e-12);
  EXPECT_NEAR(s.std, 0.2, 1e-12);  // sqrt((0.04 + 0 + 0.04) / 2)
  EXPECT_TRUE(std::isnan(spread({0.3}).std));
  EXPECT_EQ(spread({std::nan("")}).defined, 0);
}

TEST(ExperimentTables, table_two_shows_mean_and_std_over_folds_beside_the_baselines) {
  // Lesion Dice 4/6 and 1 (2 and 4 of 4 pixels): mean 5/6, std sqrt(2 * (1/6)^2) = 0.236.
  const std::vector<EvaluatedRun> folds = {parse_evaluated_run("fold-0", "f0", fold_json(2, 0.7)),
                                           parse_evaluated_run("fold-1", "f1", fold_json(4, 0.4))};
  const std::string md = cross_validation_markdown(folds);
  EXPECT_NE(md.find("| lesion | Dice (films with masses) | 0.833 ± 0.236 | 0.000 ± 0.000 | | |"),
            std::string::npos)
      << md;
  // Accuracy 1 and 0.5 (the second fold calls its mass film negative); baselines 0.5 and 0.5.
  EXPECT_NE(md.find("| classification | accuracy | 0.750 ± 0.354 | | 0.500 ± 0.000 | 0.500 ± "
                    "0.000 |"),
            std::string::npos)
      << md;
  // Precision of the all-negative classifier is undefined on every fold.
  EXPECT_NE(md.find("| classification | precision |"), std::string::npos);
  EXPECT_NE(md.find("| — |"), std::string::npos) << md;

  const auto json = nlohmann::json::parse(experiment_json(folds));
  EXPECT_EQ(json.at("runs").size(), 2u);
  EXPECT_NEAR(json.at("summary").at("lesion_dice").at("model").at("mean").get<double>(), 5.0 / 6,
              1e-12);
  EXPECT_TRUE(json.at("summary").at("precision").at("all_negative").at("mean").is_null());
}

TEST(ExperimentTables, table_one_has_a_row_per_variant_and_the_baselines) {
  const std::vector<EvaluatedRun> variants = {
      parse_evaluated_run("HDS", "a", fold_json(4, 0.7)),
      parse_evaluated_run("MULTITASK_LAST_HEAD", "b", fold_json(2, 0.7))};
  const std::string md = ablation_markdown(variants);
  EXPECT_NE(md.find("\n| HDS | "), std::string::npos) << md;
  EXPECT_NE(md.find("\n| MULTITASK_LAST_HEAD | "), std::string::npos) << md;
  EXPECT_NE(md.find("\n| baseline: empty_mask | 0.500 |"), std::string::npos) << md;
  EXPECT_NE(md.find("\n| baseline: all_positive |"), std::string::npos) << md;
}

TEST(ExperimentTables, a_malformed_file_is_named_with_what_is_missing) {
  EXPECT_THROW(
      {
        try {
          parse_evaluated_run("fold-0", "/runs/f0/metrics.json", R"({"reports": [{"split": 1}]})");
        } catch (const MetricsFileError& e) {
          EXPECT_NE(std::string(e.what()).find("/runs/f0/metrics.json"), std::string::npos);
          throw;
        }
      },
      MetricsFileError);
  EXPECT_THROW(parse_evaluated_run("x", "x.json", "{not json"), MetricsFileError);
  EXPECT_THROW(parse_evaluated_run("x", "x.json", R"({"reports": []})"), MetricsFileError);
}

}  // namespace
}  // namespace hds::scoring

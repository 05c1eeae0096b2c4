// The tables of several evaluations of one configuration, read back from the metrics.json files
// `hds-trainer eval` wrote (evaluation_report.h; of each file the last report, i.e. the last
// head): the paper's Table 2 for cross-validation (every figure of both protocols as the mean ±
// sample standard deviation over the folds, the baselines' beside them) and Table 1 for the loss
// ablation (a row per variant, each figure with its bootstrap interval, then the baselines of the
// shared test split). Stateless functions; thread-safe.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "hds/scoring/scoring.h"

namespace hds::scoring {

// One evaluated run: a fold of a cross-validation or a variant of an ablation.
struct EvaluatedRun {
  std::string name;    // "fold-0", "HDS"
  std::string source;  // the metrics.json it was read from
  std::string split;
  int head = 0;
  int films = 0;
  int films_with_mass = 0;
  int patients = 0;
  FigureEstimates model;  // undefined figures (null in the file) are NaN
  Figures empty_mask;
  Figures all_negative;
  Figures all_positive;
};

// A metrics.json that lacks a field or holds one of the wrong type. what() names the file.
class MetricsFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses the text of `source` (a metrics.json). Throws MetricsFileError.
EvaluatedRun parse_evaluated_run(const std::string& name, const std::string& source,
                                 const std::string& metrics_json);

// A figure over several runs: mean and sample standard deviation of the runs where it is
// defined (`defined` of them; std NaN below two, both NaN at none).
struct Spread {
  double mean = 0;
  double std = 0;
  int defined = 0;
};
Spread spread(const std::vector<double>& values);

// Table 2: one row per figure, the model's and each baseline's mean ± std over `folds`.
std::string cross_validation_markdown(const std::vector<EvaluatedRun>& folds);
// Table 1: one row per variant, then the baselines (of the first run's films; the runs share
// one test split).
std::string ablation_markdown(const std::vector<EvaluatedRun>& variants);
// {"runs": [{name, source, split, films, ..., model, baselines}], "summary": {figure key:
// {model, empty_mask, all_negative, all_positive: {mean, std, defined}}}}; undefined as null.
std::string experiment_json(const std::vector<EvaluatedRun>& runs);

}  // namespace hds::scoring

// Every figure the reports print, listed once: its key among a set of figures in metrics.json
// (the baselines'), where the model's estimate sits there (protocol, then name), its label in
// the tables, which baselines it is read beside, and how to reach it in Figures and
// FigureEstimates. The report (evaluation_report.cpp) writes with this list and the experiment
// tables (experiment_tables.cpp) read back with it, so the two cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hds/scoring/scoring.h"

namespace hds::scoring::detail {

struct FigureField {
  const char* key;       // "reference_dice"
  const char* protocol;  // "reference", "lesion" or "classification"
  const char* name;      // "dice": the figure within its protocol
  const char* label;     // "Dice (all films)"
  bool classifier;       // read beside the all-negative and all-positive classifiers, else beside
                         // the all-empty mask
  double& (*of)(Figures&);
  Estimate& (*estimate)(FigureEstimates&);
};

// The figures in the order of the tables: reference, lesion, classification.
const std::vector<FigureField>& figure_fields();

// A figure in JSON: the number, or null when undefined (NaN).
nlohmann::json json_number(double value);
// {"value", "low", "high"} of an estimate, undefined bounds as null.
nlohmann::json estimate_json(const Estimate& estimate);
// {figure key: number or null} of a set of figures (a baseline's).
nlohmann::json figures_json(Figures figures);
// A figure in a table: three decimals, or "—" when undefined.
std::string table_cell(double value);
// "0.812 [0.760, 0.850]": a figure and its interval.
std::string estimate_cell(const Estimate& estimate);

}  // namespace hds::scoring::detail

// Patient-level k-fold splits (docs/design.md §4, the paper's protocol): patients are dealt into k
// folds; rotation f tests on fold f, validates on fold f+1 (mod k) and trains on the rest (3/1/1
// for k = 5). The assignment is written to a split file so that every tool — trainer, evaluator,
// cross-validation driver — sees the same folds. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hds::data {

// One film as the splitter sees it.
struct FilmKey {
  std::string film;
  std::string patient;
  bool has_mass = false;
};

struct FoldAssignment {
  int folds = 0;
  std::map<std::string, int> film_fold;  // film id -> fold 0..folds-1
};

// Deals patients into `folds` folds, shuffled by `seed`. Patients with a mass are dealt first so
// each fold gets its share of them (stratified); fold sizes differ by at most one patient within
// each stratum. All films of a patient share the patient's fold. Throws DataError when a film
// id repeats or there are fewer patients than folds.
FoldAssignment assign_folds(const std::vector<FilmKey>& films, int folds, uint64_t seed);

enum class SplitRole { kTrain, kValidation, kTest };

// The role of fold `fold` in rotation `rotation` (0 <= both < folds, folds >= 3).
SplitRole fold_role(int fold, int rotation, int folds);

// Split file: "# hds split file v1", "folds K", then one "film patient fold" line per film.
// Written atomically (temporary file, then rename). Errors name the file (and line).
void write_split_file(const std::string& path, const std::vector<FilmKey>& films,
                      const FoldAssignment& assignment);
FoldAssignment read_split_file(const std::string& path);

}  // namespace hds::data

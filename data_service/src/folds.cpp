#include "hds/data/folds.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "counter_rng.h"
#include "hds/common/read_file.h"
#include "hds/data/dataset.h"

namespace hds::data {
namespace {

constexpr const char* kSplitHeader = "# hds split file v1";

// Fisher-Yates with the counter-based generator: the same order on every platform.
void shuffle(std::vector<std::string>& items, uint64_t seed, uint64_t stratum) {
  detail::CounterRng rng(detail::derive_key({domain(detail::RngDomain::kFolds), seed, stratum}));
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

}  // namespace

FoldAssignment assign_folds(const std::vector<FilmKey>& films, int folds, uint64_t seed) {
  if (folds < 3)
    throw DataError("folds: need at least 3 folds (train, validation, test), got " +
                    std::to_string(folds));
  std::map<std::string, bool> patient_has_mass;
  std::set<std::string> seen_films;
  for (const auto& film : films) {
    if (!seen_films.insert(film.film).second)
      throw DataError("folds: film " + film.film + " listed twice");
    patient_has_mass[film.patient] = patient_has_mass[film.patient] || film.has_mass;
  }
  if (static_cast<int>(patient_has_mass.size()) < folds) {
    throw DataError("folds: " + std::to_string(patient_has_mass.size()) + " patients cannot fill " +
                    std::to_string(folds) + " folds");
  }
  std::vector<std::string> with_mass, without_mass;
  for (const auto& [patient, has_mass] : patient_has_mass) {
    (has_mass ? with_mass : without_mass).push_back(patient);
  }
  shuffle(with_mass, seed, 1);
  shuffle(without_mass, seed, 0);
  // Deal both strata round-robin, the second continuing where the first stopped, so that fold
  // sizes stay within one patient of each other overall too.
  std::map<std::string, int> patient_fold;
  int next = 0;
  for (const auto* stratum : {&with_mass, &without_mass}) {
    for (const auto& patient : *stratum) {
      patient_fold[patient] = next;
      next = (next + 1) % folds;
    }
  }
  FoldAssignment assignment;
  assignment.folds = folds;
  for (const auto& film : films) assignment.film_fold[film.film] = patient_fold.at(film.patient);
  return assignment;
}

SplitRole fold_role(int fold, int rotation, int folds) {
  if (folds < 3 || fold < 0 || fold >= folds || rotation < 0 || rotation >= folds) {
    throw DataError("folds: fold " + std::to_string(fold) + " / rotation " +
                    std::to_string(rotation) + " out of range for " + std::to_string(folds) +
                    " folds");
  }
  if (fold == rotation) return SplitRole::kTest;
  if (fold == (rotation + 1) % folds) return SplitRole::kValidation;
  return SplitRole::kTrain;
}

void write_split_file(const std::string& path, const std::vector<FilmKey>& films,
                      const FoldAssignment& assignment) {
  std::ostringstream text;
  text << kSplitHeader << "\nfolds " << assignment.folds << "\n";
  for (const auto& film : films) {
    text << film.film << " " << film.patient << " " << assignment.film_fold.at(film.film) << "\n";
  }
  try {
    hds::common::replace_file(path, text.str());
  } catch (const hds::common::FileWriteError& e) {
    throw DataError(std::string(e.what()) + " (the split file)");
  }
}

FoldAssignment read_split_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot open the split file");
  auto error = [&path](int line, const std::string& what) {
    return DataError(path + ":" + std::to_string(line) + ": " + what);
  };
  std::string line;
  if (!std::getline(in, line) || line != kSplitHeader) {
    throw error(1, "not a split file (expected the line \"" + std::string(kSplitHeader) + "\")");
  }
  FoldAssignment assignment;
  std::string word;
  if (!std::getline(in, line) || !(std::istringstream(line) >> word >> assignment.folds) ||
      word != "folds" || assignment.folds < 3) {
    throw error(2, "expected \"folds K\" with K >= 3");
  }
  std::map<std::string, int> patient_fold;  // a patient in two folds would leak into the test
  for (int number = 3; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string film, patient, extra;
    int fold = -1;
    if (!(fields >> film >> patient >> fold) || (fields >> extra)) {
      throw error(number, "expected \"film patient fold\"");
    }
    if (fold < 0 || fold >= assignment.folds) {
      throw error(number, "fold " + std::to_string(fold) + " outside 0.." +
                              std::to_string(assignment.folds - 1));
    }
    if (!assignment.film_fold.emplace(film, fold).second)
      throw error(number, "film " + film + " listed twice");
    const auto [known, inserted] = patient_fold.emplace(patient, fold);
    if (!inserted && known->second != fold) {
      throw error(number, "patient " + patient + " is in folds " + std::to_string(known->second) +
                              " and " + std::to_string(fold));
    }
  }
  return assignment;
}

}  // namespace hds::data

#include "hds/data/inspect.h"

#include <map>
#include <set>
#include <sstream>

namespace hds::data {
namespace {

// Counts over a set of films.
struct Tally {
  int films = 0;
  int films_with_mass = 0;
  int masses = 0;
  std::set<std::string> patients;

  void add(const Film& film) {
    ++films;
    films_with_mass += film.has_mass() ? 1 : 0;
    masses += film.mass_count;
    patients.insert(film.patient);
  }
  std::string text() const {
    return std::to_string(films) + " films, " + std::to_string(patients.size()) + " patients, " +
           std::to_string(films_with_mass) + " films with masses, " + std::to_string(masses) +
           " masses";
  }
};

}  // namespace

std::string describe_dataset(const Dataset& dataset, const hds::config::DataConfig& config) {
  Tally all, train, val, test;
  std::map<int, Tally> per_fold;
  for (const auto* split : {&dataset.train, &dataset.val, &dataset.test}) {
    Tally& tally = split == &dataset.train ? train : split == &dataset.val ? val : test;
    for (const Film& film : *split) {
      all.add(film);
      tally.add(film);
      const auto fold = dataset.film_fold.find(film.id);
      if (fold != dataset.film_fold.end()) per_fold[fold->second].add(film);
    }
  }
  std::ostringstream out;
  out << "source: " << config.source() << (config.root().empty() ? "" : " (" + config.root() + ")")
      << "\n"
      << "films: " << all.films << "\n"
      << "patients: " << all.patients.size() << "\n"
      << "films_with_masses: " << all.films_with_mass << "\n"
      << "masses: " << all.masses << "\n"
      << "skipped_films: " << dataset.report.skipped_films << "\n"
      << "skipped_masses: " << dataset.report.skipped_masses << "\n"
      << "image: " << config.image_rows() << "x" << config.image_cols() << "\n"
      << "mean: " << dataset.mean << "\n"
      << "std: " << dataset.std << "\n"
      << "train: " << train.text() << "\n"
      << "val: " << val.text() << "\n"
      << "test: " << test.text() << "\n";
  if (!dataset.cache_dir.empty()) {
    out << "cache: " << dataset.cache_dir << " (" << dataset.cache_hits << " hits, "
        << dataset.cache_misses << " misses)\n";
  }
  if (dataset.folds > 0) {
    out << "folds: " << dataset.folds << " (rotation " << dataset.fold << ": test fold "
        << dataset.fold << ", validation fold " << (dataset.fold + 1) % dataset.folds << ")\n"
        << "split_file: " << dataset.split_file << "\n";
    for (const auto& [fold, tally] : per_fold)
      out << "fold " << fold << ": " << tally.text() << "\n";
  }
  return out.str();
}

}  // namespace hds::data

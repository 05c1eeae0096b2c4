#include "hds/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "hds/common/machine_memory.h"
#include "hds/config/config.h"
#include "hds/data/film_cache.h"
#include "hds/data/film_reader.h"
#include "hds/data/folds.h"
#include "hds/data/preprocess.h"
#include "parallel_for.h"
#include "read_file.h"

namespace hds::data {
namespace {

// Prints a warning on stderr as it is found and keeps it in the report.
void warn(LoadReport& report, const std::string& message) {
  std::cerr << "warning: " << message << "\n";
  report.warnings.push_back(message);
}

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/hds";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home) + "/.cache/hds";
  return ".cache/hds";
}

// Everything besides the source files' bytes that decides a preprocessed film. v2: DICOM films
// pass the grayscale pipeline (modality LUT or rescale, VOI, MONOCHROME1), not the stored values.
std::string preprocessing_signature(const hds::config::DataConfig& config) {
  return "hds-film v2 source=" + config.source() +
         " mias_other=" + std::to_string(config.mias_other_abnormalities()) +
         " rows=" + std::to_string(config.image_rows()) +
         " cols=" + std::to_string(config.image_cols()) +
         " blank=" + std::to_string(config.blank_threshold()) +
         // Absent for the whole film, so that caches written before the option stay valid.
         (config.breast_region() == hds::config::DataConfig::WHOLE_FILM
              ? std::string()
              : " breast-largest=" + std::to_string(config.breast_threshold()));
}

// The film's cache key: the signature, the id, and each source file's name and bytes (a missing
// file counts as such). Names, not paths, so that a moved dataset keeps its cache.
std::optional<CacheKey> film_key(const FilmReader& reader, const std::string& id,
                                 const std::string& signature) {
  const std::vector<std::string> files = reader.source_files(id);
  if (files.empty()) return std::nullopt;
  std::vector<std::string> contents = {signature, id};
  for (const std::string& file : files) {
    contents.push_back(std::filesystem::path(file).filename().string());
    contents.push_back(std::filesystem::exists(file) ? detail::read_data_file(file) : "<absent>");
  }
  return make_cache_key(std::vector<std::string_view>(contents.begin(), contents.end()));
}

struct CacheUse {
  const FilmCache* cache = nullptr;  // null: no caching
  std::string signature;
};

Film read_and_preprocess(const FilmReader& reader, const std::string& id,
                         const PreprocessOptions& options, const CacheUse& use) {
  const auto key = use.cache ? film_key(reader, id, use.signature) : std::nullopt;
  if (key) {
    if (std::optional<Film> cached = use.cache->load(*key, id)) return std::move(*cached);
  }
  RawFilm raw = reader.read_film(id);
  Film film =
      preprocess_film(raw.image, raw.mask, options, std::move(raw.id), std::move(raw.patient));
  film.mass_count = raw.mass_count;
  if (key) {
    try {
      use.cache->store(*key, film);
    } catch (const DataError& error) {
      // A cache that cannot be written (full disk) costs speed, not correctness.
      std::cerr << "warning: " << error.what() << "\n";
    }
  }
  return film;
}

// How read_films works: what it reads through, what a bad film does, how many at once.
struct ReadPlan {
  PreprocessOptions options;
  CacheUse cache;
  hds::config::DataConfig::BadSamplePolicy policy;
  unsigned threads = 1;  // films_decoded_at_once
};

// Reads and preprocesses the films `ids` in parallel. A bad film (DataError) stops loading under
// STOP; under SKIP it is left out, warned about and counted, in the order of `ids`.
std::vector<Film> read_films(const FilmReader& reader, const std::vector<std::string>& ids,
                             const ReadPlan& plan, LoadReport& report) {
  const PreprocessOptions& options = plan.options;
  const CacheUse& cache = plan.cache;
  const auto policy = plan.policy;
  std::vector<std::optional<Film>> slots(ids.size());
  std::vector<std::string> problems(ids.size());
  detail::parallel_for(ids.size(), plan.threads, [&](size_t i) {
    try {
      slots[i] = read_and_preprocess(reader, ids[i], options, cache);
    } catch (const DataError& error) {
      if (policy == hds::config::DataConfig::STOP) throw;
      problems[i] = error.what();
    }
  });
  std::vector<Film> films;
  films.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (slots[i]) {
      films.push_back(std::move(*slots[i]));
      continue;
    }
    ++report.skipped_films;
    warn(report, "skipped film " + ids[i] + " (data.on_bad_sample SKIP): " + problems[i]);
  }
  return films;
}

// The configured statistics when either is set, else the training split's own.
PixelStatistics normalisation(const hds::config::DataConfig& config,
                              const std::vector<Film>& train) {
  if (config.mean() != 0 || config.std() != 0) {
    if (!(config.std() > 0) || !std::isfinite(config.std()) || !std::isfinite(config.mean()))
      throw DataError("data.mean = " + std::to_string(config.mean()) +
                      ", data.std = " + std::to_string(config.std()) +
                      ": std must be positive and finite (set both to 0 to compute them from the "
                      "training split)");
    return {config.mean(), config.std()};
  }
  const PixelStatistics statistics = pixel_statistics(train);
  if (!(statistics.std > 0))
    throw DataError("training split: every pixel has the same grey level (" +
                    std::to_string(statistics.mean) + "); cannot normalise");
  return statistics;
}

// The split file's default name: in the cache directory, named for the source, its films, the
// fold count and the seed, so that another dataset or dealing never reuses it.
std::string default_split_file(const hds::config::DataConfig& config, const std::string& cache_dir,
                               const std::vector<std::string>& film_ids) {
  std::vector<std::string> parts = {config.source(), std::to_string(config.folds()),
                                    std::to_string(config.fold_seed())};
  parts.insert(parts.end(), film_ids.begin(), film_ids.end());
  const std::string hash =
      make_cache_key(std::vector<std::string_view>(parts.begin(), parts.end())).hex().substr(0, 16);
  return cache_dir + "/splits/" + config.source() + "-k" + std::to_string(config.folds()) + "-" +
         hash + ".txt";
}

// The split file of a source divided into folds: data.split_file, or the default one for the films
// `film_ids`.
std::string split_file_path(const hds::config::DataConfig& config, const std::string& cache_dir,
                            const std::vector<std::string>& film_ids) {
  return config.split_file().empty() ? default_split_file(config, cache_dir, film_ids)
                                     : config.split_file();
}

// The assignment of the split file for the films `film_ids`, when it exists and gives each of
// them a fold of data.folds; none otherwise (a full load then deals them, or names the problem).
std::optional<FoldAssignment> existing_assignment(const hds::config::DataConfig& config,
                                                  const std::string& cache_dir,
                                                  const std::vector<std::string>& film_ids) {
  const std::string path = split_file_path(config, cache_dir, film_ids);
  if (!std::filesystem::exists(path)) return std::nullopt;
  FoldAssignment assignment = read_split_file(path);
  if (assignment.folds != config.folds()) return std::nullopt;
  for (const std::string& id : film_ids) {
    if (assignment.film_fold.count(id) == 0) return std::nullopt;
  }
  return assignment;
}

// Records the folds of `assignment` (read from `path`) in `dataset`.
void record_folds(const FoldAssignment& assignment, const hds::config::DataConfig& config,
                  const std::string& path, Dataset& dataset) {
  dataset.film_fold = assignment.film_fold;
  dataset.folds = config.folds();
  dataset.fold = config.fold();
  dataset.split_file = path;
}

// Divides `films` (every film of a source without split lists) into the rotation's train,
// validation and test splits by patient folds, reading the split file or dealing and writing it.
void split_by_folds(std::vector<Film> films, const hds::config::DataConfig& config,
                    const std::string& cache_dir, Dataset& dataset) {
  std::vector<FilmKey> keys;
  std::vector<std::string> ids;
  for (const Film& film : films) {
    keys.push_back({film.id, film.patient, film.has_mass()});
    ids.push_back(film.id);
  }
  const std::string path = split_file_path(config, cache_dir, ids);
  FoldAssignment assignment;
  if (std::filesystem::exists(path)) {
    assignment = read_split_file(path);
    if (assignment.folds != config.folds())
      throw DataError(path + ": holds " + std::to_string(assignment.folds) +
                      " folds but data.folds = " + std::to_string(config.folds()));
    for (const FilmKey& key : keys) {
      if (assignment.film_fold.count(key.film) == 0)
        throw DataError(path + ": film " + key.film + " has no fold (the split file belongs to " +
                        "other data; name another data.split_file or delete this one)");
    }
  } else {
    assignment = assign_folds(keys, config.folds(), config.fold_seed());
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    write_split_file(path, keys, assignment);
  }
  for (Film& film : films) {
    const int fold = assignment.film_fold.at(film.id);
    dataset.film_fold[film.id] = fold;
    switch (fold_role(fold, config.fold(), config.folds())) {
      case SplitRole::kTrain:
        dataset.train.push_back(std::move(film));
        break;
      case SplitRole::kValidation:
        dataset.val.push_back(std::move(film));
        break;
      case SplitRole::kTest:
        dataset.test.push_back(std::move(film));
        break;
    }
  }
  dataset.folds = config.folds();
  dataset.fold = config.fold();
  dataset.split_file = path;
}

}  // namespace

unsigned films_decoded_at_once(uint64_t available_bytes, uint64_t max_film_pixels, unsigned cores) {
  const uint64_t per_film = std::max<uint64_t>(1, max_film_pixels) * kDecodeBytesPerPixel;
  const uint64_t fit = available_bytes / 2 / per_film;
  return static_cast<unsigned>(std::clamp<uint64_t>(fit, 1, std::max(1u, cores)));
}

void check_dataset_fits_in_memory(uint64_t films, const hds::config::DataConfig& config,
                                  uint64_t available_bytes, const std::string& what) {
  const uint64_t pixels = static_cast<uint64_t>(config.image_rows()) * config.image_cols();
  const uint64_t per_film = pixels * kLoadedBytesPerPixel;
  if (films == 0 || films <= available_bytes / per_film) return;
  const auto gib = [](double bytes) {
    std::ostringstream text;
    text << std::setprecision(3) << bytes / (1024.0 * 1024 * 1024) << " GiB";
    return text.str();
  };
  throw DataError(what + ": " + std::to_string(films) + " films of data.image_rows x " +
                  "data.image_cols = " + std::to_string(config.image_rows()) + " x " +
                  std::to_string(config.image_cols()) + " need " +
                  gib(static_cast<double>(films) * static_cast<double>(per_film)) +
                  " in memory; this machine has " + gib(static_cast<double>(available_bytes)) +
                  " available: use fewer or smaller films");
}

bool Film::has_mass() const {
  return std::any_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
}

Dataset load_dataset(const hds::config::DataConfig& config, const SplitSelection& selection) {
  if (!selection.train && !selection.normalisation) {
    throw std::invalid_argument("load_dataset without the training split needs its normalisation");
  }
  // Read once: every budget of this load is checked against the same figure.
  const uint64_t available = hds::common::available_memory_bytes();
  const PreprocessOptions options = preprocess_options_for(config);
  if (config.source() == "phantom") {
    const hds::config::PhantomConfig& phantom = config.phantom();
    check_dataset_fits_in_memory(
        static_cast<uint64_t>(selection.train ? phantom.train_count() : 0) +
            static_cast<uint64_t>(selection.val ? phantom.val_count() : 0) +
            static_cast<uint64_t>(selection.test ? phantom.test_count() : 0),
        config, available, "data.phantom.train_count + val_count + test_count");
  }
  const std::unique_ptr<FilmReader> reader = make_film_reader(config);
  const FilmList& films = reader->films();
  const std::string cache_dir =
      config.cache_dir().empty() ? default_cache_dir() : config.cache_dir();
  const bool folds = hds::config::divides_into_folds(config) && config.folds() > 0;
  // What to decode: the selected splits' films; for a source divided into folds, the selected
  // roles' films by the existing split file, else every film (dealt after decoding).
  FilmList wanted;
  std::optional<FoldAssignment> assignment;
  if (folds && !selection.train) assignment = existing_assignment(config, cache_dir, films.train);
  if (folds && !assignment) {
    wanted.train = films.train;
  } else if (folds) {
    for (const std::string& id : films.train) {
      const SplitRole role = fold_role(assignment->film_fold.at(id), config.fold(), config.folds());
      if (role == SplitRole::kValidation && selection.val) wanted.val.push_back(id);
      if (role == SplitRole::kTest && selection.test) wanted.test.push_back(id);
    }
  } else {
    if (selection.train) wanted.train = films.train;
    if (selection.val) wanted.val = films.val;
    if (selection.test) wanted.test = films.test;
  }
  check_dataset_fits_in_memory(wanted.train.size() + wanted.val.size() + wanted.test.size(), config,
                               available, "the dataset's film count");
  Dataset dataset;
  dataset.report.skipped_films = films.report.skipped_films;
  dataset.report.skipped_masses = films.report.skipped_masses;
  for (const std::string& warning : films.report.warnings) warn(dataset.report, warning);

  std::optional<FilmCache> cache;
  if (config.use_cache()) {
    cache.emplace(cache_dir);
    dataset.cache_dir = cache_dir;
  }
  const CacheUse cache_use{cache ? &*cache : nullptr, preprocessing_signature(config)};
  const auto policy = config.on_bad_sample();
  const ReadPlan plan{options, cache_use, policy,
                      films_decoded_at_once(available, config.max_film_pixels(),
                                            std::max(1u, std::thread::hardware_concurrency()))};
  dataset.train = read_films(*reader, wanted.train, plan, dataset.report);
  dataset.val = read_films(*reader, wanted.val, plan, dataset.report);
  dataset.test = read_films(*reader, wanted.test, plan, dataset.report);
  if (cache) {
    dataset.cache_hits = cache->hits();
    dataset.cache_misses = cache->misses();
  }
  if (folds && assignment) {
    record_folds(*assignment, config, split_file_path(config, cache_dir, films.train), dataset);
  } else if (folds && !dataset.train.empty()) {
    split_by_folds(std::move(dataset.train), config, cache_dir, dataset);
  }
  if (selection.train && dataset.train.empty())
    throw DataError("data.source = \"" + config.source() + "\": the training split is empty" +
                    (films.train.empty() ? "" : " (every training film was skipped)"));
  const PixelStatistics statistics =
      selection.normalisation ? *selection.normalisation : normalisation(config, dataset.train);
  dataset.mean = statistics.mean;
  dataset.std = statistics.std;
  // A full load that dealt every film keeps the selected splits only.
  if (!selection.train) dataset.train.clear();
  if (!selection.val) dataset.val.clear();
  if (!selection.test) dataset.test.clear();
  for (std::vector<Film>* split : {&dataset.train, &dataset.val, &dataset.test})
    normalise_films(*split, dataset.mean, dataset.std);
  return dataset;
}

}  // namespace hds::data

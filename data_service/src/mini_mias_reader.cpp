// The "mini-mias" source; the rules are in hds/data/mini_mias.h.
#include <algorithm>
#include <filesystem>
#include <map>

#include "film_readers.h"
#include "hds/data/mini_mias.h"
#include "hds/data/pgm_io.h"
#include "hds/data/png_io.h"
#include "mask_drawing.h"
#include "read_file.h"

namespace hds::data::detail {
namespace {

namespace fs = std::filesystem;
using hds::config::DataConfig;

// Where a film's image may be, in the order searched; PNG before PGM in each folder.
const char* const kImageFolders[] = {"images", ".", "pgm-originals"};
const char* const kImageExtensions[] = {".png", ".pgm"};

std::string where(const std::string& info_path, const MiasAnnotation& row) {
  return info_path + ":" + std::to_string(row.line);
}

// A film listed as NORM and with another row contradicts itself.
void check_normal_rows(const std::vector<MiasAnnotation>& rows, const std::string& info_path) {
  if (rows.size() < 2) return;
  for (const MiasAnnotation& row : rows)
    if (row.abnormality == "NORM")
      throw DataError(where(info_path, row) + ": " + row.film_id + " is listed as NORM and on " +
                      std::to_string(rows.size() - 1) + " other row(s)");
}

class MiniMiasReader final : public FilmReader {
 public:
  MiniMiasReader(const fs::path& root, DataConfig::MiasOtherAbnormalities other_abnormalities,
                 uint64_t max_pixels)
      : root_(root), info_path_((root / "Info.txt").string()), max_pixels_(max_pixels) {
    std::map<std::string, std::vector<MiasAnnotation>> rows_of_film;  // ordered by film id
    for (MiasAnnotation& row : parse_mias_info(read_data_file(info_path_), info_path_))
      rows_of_film[row.film_id].push_back(std::move(row));
    if (rows_of_film.empty())
      throw DataError(info_path_ + ": lists no films (no row starts with an id mdbNNN)");
    for (const auto& [id, rows] : rows_of_film) {
      check_normal_rows(rows, info_path_);
      // EXCLUDE keeps the "no mass" films to normal ones: a calcification or distortion left in
      // the background would teach the network that such tissue is normal.
      if (other_abnormalities == DataConfig::EXCLUDE &&
          std::any_of(rows.begin(), rows.end(), is_mias_other_abnormality))
        continue;
      add_film(id, rows);
    }
  }

  const FilmList& films() const override { return films_; }

  // Info.txt as a whole: any change to the annotations rebuilds every film, which is cheap.
  std::vector<std::string> source_files(const std::string& id) const override {
    return {image_path(id), info_path_};
  }

  RawFilm read_film(const std::string& id) const override {
    const auto masses = masses_of_film_.find(id);
    if (masses == masses_of_film_.end())
      throw DataError(info_path_ + ": lists no film '" + id + "'");
    const std::string path = image_path(id);
    RawFilm film;
    film.id = id;
    film.patient = mias_patient(id);
    film.image = path.size() > 4 && path.compare(path.size() - 4, 4, ".pgm") == 0
                     ? read_pgm(path, max_pixels_)
                     : read_grey_png(path, max_pixels_);
    const int rows = film.image.rows, cols = film.image.cols;
    film.mask.assign(static_cast<size_t>(rows) * cols, 0);
    for (const MiasAnnotation& mass : masses->second) {
      if (mass.x >= cols || mass.y >= rows)
        throw DataError(where(info_path_, mass) + ": " + id + ": centre (" +
                        std::to_string(mass.x) + ", " + std::to_string(mass.y) +
                        ") lies outside the " + std::to_string(rows) + "x" + std::to_string(cols) +
                        " image " + path);
      // Info.txt counts y up from the bottom row; image rows count down from the top.
      fill_circle(film.mask, rows, cols, rows - 1 - mass.y, mass.x, mass.radius);
    }
    film.mass_count = static_cast<int>(masses->second.size());
    return film;
  }

 private:
  // Lists the film with the masses it can draw. A mass row without coordinates is skipped with a
  // warning; a film left with no mass to draw is left out, since as a film without a mass its
  // label would be wrong (it holds a mass we cannot mark).
  void add_film(const std::string& id, const std::vector<MiasAnnotation>& rows) {
    std::vector<MiasAnnotation> masses;
    int skipped = 0;
    for (const MiasAnnotation& row : rows) {
      if (!is_mias_mass(row)) continue;
      if (row.has_centre) {
        masses.push_back(row);
        continue;
      }
      ++skipped;
      warn(id + ": mass without coordinates, skipped (" + where(info_path_, row) + ")");
    }
    films_.report.skipped_masses += skipped;
    if (skipped > 0 && masses.empty()) {
      ++films_.report.skipped_films;
      warn(id + ": no mass left to draw; film left out (as a film without a mass its label " +
           "would be wrong)");
      return;
    }
    films_.train.push_back(id);
    masses_of_film_.emplace(id, std::move(masses));
  }

  void warn(const std::string& message) { films_.report.warnings.push_back(message); }

  std::string image_path(const std::string& id) const {
    for (const char* folder : kImageFolders) {
      for (const char* extension : kImageExtensions) {
        const fs::path candidate = (root_ / folder / (id + extension)).lexically_normal();
        if (fs::is_regular_file(candidate)) return candidate.string();
      }
    }
    throw DataError(id + ": no image file: looked for " + id + ".png and " + id + ".pgm in " +
                    (root_ / "images").string() + ", " + root_.string() + " and " +
                    (root_ / "pgm-originals").string());
  }

  fs::path root_;
  std::string info_path_;
  uint64_t max_pixels_;
  FilmList films_;
  std::map<std::string, std::vector<MiasAnnotation>> masses_of_film_;  // drawable masses
};

}  // namespace

std::unique_ptr<FilmReader> make_mini_mias_reader(
    const std::string& root, DataConfig::MiasOtherAbnormalities other_abnormalities,
    uint64_t max_pixels) {
  return std::make_unique<MiniMiasReader>(fs::path(root), other_abnormalities, max_pixels);
}

}  // namespace hds::data::detail

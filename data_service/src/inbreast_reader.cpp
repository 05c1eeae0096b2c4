// The "inbreast" source; the rules are in hds/data/inbreast.h.
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>

#include "film_readers.h"
#include "hds/data/dicom.h"
#include "hds/data/inbreast.h"
#include "mask_drawing.h"
#include "read_file.h"

namespace hds::data::detail {
namespace {

namespace fs = std::filesystem;

// A point may lie anywhere on its pixel: pixel centres are integers, so a pixel spans +-0.5.
constexpr double kPixelHalf = 0.5;

bool has_dicom_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension == ".dcm";
}

std::string point_text(const RoiPoint& point) {
  std::ostringstream text;
  text << "(" << point.x << ", " << point.y << ")";
  return text.str();
}

// Draws one Mass ROI; `xml` and `dicom` name the files in errors.
void draw_mass(const OsirixRoi& roi, RawFilm& film, const std::string& xml,
               const std::string& dicom) {
  const std::string named = xml + ": ROI " + std::to_string(roi.index) + " (" + roi.name + ")";
  if (roi.points.size() < 3)
    throw DataError(named + " has " + std::to_string(roi.points.size()) +
                    " point(s); a mass outline needs at least 3");
  const int rows = film.image.rows, cols = film.image.cols;
  for (size_t k = 0; k < roi.points.size(); ++k) {
    const RoiPoint& point = roi.points[k];
    if (point.x < -kPixelHalf || point.x > cols - kPixelHalf || point.y < -kPixelHalf ||
        point.y > rows - kPixelHalf)
      throw DataError(named + ": point " + std::to_string(k) + " " + point_text(point) +
                      " lies outside the " + std::to_string(rows) + "x" + std::to_string(cols) +
                      " image " + dicom + " (x = column, y = row)");
  }
  fill_polygon(film.mask, rows, cols, roi.points);
}

class InbreastReader final : public FilmReader {
 public:
  InbreastReader(const fs::path& root, uint64_t max_pixels) : root_(root), max_pixels_(max_pixels) {
    const fs::path folder = root / "AllDICOMs";
    if (!fs::is_directory(folder))
      throw DataError(folder.string() +
                      ": not a folder; the inbreast source reads AllDICOMs/*.dcm under data.root");
    for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file() || !has_dicom_extension(entry.path())) continue;
      const std::string id = inbreast_film_id(entry.path().filename().string());
      if (id.empty())
        throw DataError(entry.path().string() + ": the file name gives no film id (expected " +
                        "<id>_<patient hash>_MG_<side>_<view>_ANON.dcm)");
      const auto [existing, added] = dicom_of_film_.emplace(id, entry.path().string());
      if (!added)
        throw DataError(entry.path().string() + ": film id " + id + " is also the id of " +
                        existing->second);
    }
    if (dicom_of_film_.empty()) throw DataError(folder.string() + ": holds no .dcm files");
    for (const auto& [id, path] : dicom_of_film_) films_.train.push_back(id);
  }

  const FilmList& films() const override { return films_; }

  // A missing ROI file is part of the key too: adding one later rebuilds the film.
  std::vector<std::string> source_files(const std::string& id) const override {
    const auto found = dicom_of_film_.find(id);
    if (found == dicom_of_film_.end()) return {};
    return {found->second, (root_ / "AllXML" / (id + ".xml")).string()};
  }

  RawFilm read_film(const std::string& id) const override {
    const auto found = dicom_of_film_.find(id);
    if (found == dicom_of_film_.end())
      throw DataError((root_ / "AllDICOMs").string() + ": no film '" + id + "'");
    const std::string& dicom_path = found->second;
    DicomFilm dicom = read_dicom_film(dicom_path, max_pixels_);
    RawFilm film;
    film.id = id;
    film.patient = patient_of(dicom, dicom_path, id);
    film.image = std::move(dicom.image);
    film.mask.assign(film.image.pixels.size(), 0);
    const fs::path xml = root_ / "AllXML" / (id + ".xml");
    if (!fs::exists(xml)) return film;  // no ROI file: no mass
    for (const OsirixRoi& roi : parse_osirix_rois(read_data_file(xml.string()), xml.string())) {
      if (!is_inbreast_mass(roi)) continue;
      draw_mass(roi, film, xml.string(), dicom_path);
      ++film.mass_count;
    }
    return film;
  }

 private:
  // PatientID, else the file name's patient hash, else the film itself (a patient of its own).
  static std::string patient_of(const DicomFilm& dicom, const std::string& path,
                                const std::string& id) {
    if (!dicom.patient_id.empty()) return dicom.patient_id;
    const std::string hash = inbreast_patient_hash(fs::path(path).filename().string());
    return hash.empty() ? id : hash;
  }

  fs::path root_;
  uint64_t max_pixels_;
  FilmList films_;
  std::map<std::string, std::string> dicom_of_film_;  // film id -> .dcm path, ordered by id
};

}  // namespace

std::unique_ptr<FilmReader> make_inbreast_reader(const std::string& root, uint64_t max_pixels) {
  return std::make_unique<InbreastReader>(fs::path(root), max_pixels);
}

}  // namespace hds::data::detail

namespace hds::data {

std::string inbreast_film_id(const std::string& file_name) {
  const size_t underscore = file_name.find('_');
  if (underscore != std::string::npos) return file_name.substr(0, underscore);
  return std::filesystem::path(file_name).stem().string();
}

std::string inbreast_patient_hash(const std::string& file_name) {
  const size_t first = file_name.find('_');
  if (first == std::string::npos) return "";
  const size_t second = file_name.find('_', first + 1);
  if (second == std::string::npos) return "";
  return file_name.substr(first + 1, second - first - 1);
}

}  // namespace hds::data

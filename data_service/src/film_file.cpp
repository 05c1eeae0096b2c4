#include "hds/data/film_file.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "hds/data/dataset.h"
#include "hds/data/dicom.h"
#include "hds/data/pgm_io.h"
#include "hds/data/png_io.h"

namespace hds::data {

FilmFile read_film_file(const std::string& path, uint64_t max_pixels) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  FilmFile film;
  if (extension == ".png") {
    film.kind = "png";
    film.image = read_grey_png(path, max_pixels);
  } else if (extension == ".pgm") {
    film.kind = "pgm";
    film.image = read_pgm(path, max_pixels);
  } else if (extension == ".dcm" || extension == ".dicom" || extension.empty()) {
    film.kind = "dicom";
    film.dicom = read_dicom_film(path, max_pixels);
    film.image = std::move(film.dicom.image);
  } else {
    throw DataError(path + ": unknown film type \"" + extension +
                    "\" (give .png, .pgm, .dcm or a DICOM file without extension)");
  }
  return film;
}

}  // namespace hds::data

#include "hds/data/film_file.h"

#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "dcmtk_support.h"
#include "hds/data/dataset.h"
#include "hds/data/dicom.h"
#include "hds/data/pgm_io.h"
#include "hds/data/png_io.h"

namespace hds::data {

namespace {

std::string lower_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

// DICOM Part 10 files carry "DICM" after a 128-byte preamble.
bool has_dicom_preamble(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  char magic[4] = {};
  return file.seekg(128) && file.read(magic, 4) && std::string(magic, 4) == "DICM";
}

}  // namespace

FilmCandidate classify_film_candidate(const std::string& path) {
  const std::string extension = lower_extension(path);
  if (extension == ".png" || extension == ".pgm") return {true, ""};
  const bool dicom_name = extension == ".dcm" || extension == ".dicom";
  if (!has_dicom_preamble(path) && !dicom_name) {
    return {false, "not a film file (neither PNG, PGM nor DICOM)"};
  }
  DcmFileFormat file;
  // Long values (the pixels) stay on disk: only the header is needed here.
  if (file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 1024).bad()) return {true, ""};
  DcmDataset& data = *file.getDataset();
  const std::string modality = dcmtk_support::text_of(data, DCM_Modality);
  const std::string sop_class = dcmtk_support::text_of(data, DCM_SOPClassUID);
  const char* class_name = dcmFindNameOfUID(sop_class.c_str(), nullptr);
  const std::string what = class_name != nullptr ? class_name
                           : sop_class.empty()   ? std::string("no SOP Class UID")
                                                 : sop_class;
  if (!data.tagExists(DCM_PixelData)) return {false, "DICOM without pixel data (" + what + ")"};
  const bool breast = dcmtk_support::text_of(data, DCM_BodyPartExamined) == "BREAST";
  if (modality == "MG" || ((modality == "DX" || modality == "CR") && breast)) return {true, ""};
  return {false, "modality " + (modality.empty() ? std::string("missing") : modality) +
                     ", not a mammogram (" + what + ")"};
}

FilmFile read_film_file(const std::string& path, uint64_t max_pixels) {
  const std::string extension = lower_extension(path);
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

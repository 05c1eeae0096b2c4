// One mammogram file of any supported kind, for inference on films outside a dataset: the kind
// follows the extension (case-insensitive): .png (8/16-bit grey), .pgm (binary P5), .dcm, .dicom
// or none (DICOM, DCMTK). Stateless; thread-safe.
#pragma once

#include <string>

#include "hds/data/dicom.h"
#include "hds/data/film_size.h"
#include "hds/data/grey_image.h"

namespace hds::data {

struct FilmFile {
  GreyImage image;
  std::string kind;  // "png", "pgm" or "dicom"
  DicomFilm dicom;   // for DICOM: spacing, laterality, view, identifiers (its image moved out)
};

// Throws DataError naming the file: an unknown extension, or what its reader refuses.
FilmFile read_film_file(const std::string& path, uint64_t max_pixels = default_max_film_pixels());

}  // namespace hds::data

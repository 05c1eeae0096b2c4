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

// Whether a file found in a folder is a film `infer` reads, and if not, why it is left alone.
struct FilmCandidate {
  bool is_film = false;
  std::string skip_reason;  // when not a film, e.g. "DICOM without pixel data (Comprehensive SR)"
};

// Classifies `path` by its content, never failing: PNG and PGM by extension are films; DICOM
// (the "DICM" preamble, or a .dcm/.dicom name) is a film when it holds pixel data and is a
// mammogram (Modality MG, or DX/CR of BodyPartExamined BREAST); any other file (other
// modalities, DICOM without pixels such as SEG, SR or presentation states, text, unreadable
// files) is skipped with the reason. A .dcm file DCMTK cannot parse counts as a film, so that
// reading it fails by name rather than vanishing from the run.
FilmCandidate classify_film_candidate(const std::string& path);

}  // namespace hds::data

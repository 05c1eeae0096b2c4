// INbreast films and annotations, and the rules the "inbreast" source applies to them. Stateless
// free functions; thread-safe.
//
// The source lists <root>/AllDICOMs/*.dcm; a film's id is its file name up to the first '_'
// ("20586908" for 20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm) and its ROIs are in
// <root>/AllXML/<id>.xml (no file: no mass). ROIs named "Mass" (any case, blanks around ignored)
// are drawn as filled polygons; the other ROIs (calcifications, clusters, ...) are not masses.
// The patient is the DICOM PatientID; where that tag is missing or empty, the file name's second
// part (the anonymised patient hash, the same for all films of a patient). Every film goes to the
// training split.
#pragma once

#include <string>
#include <vector>

namespace hds::data {

// A point of an ROI in pixels: x = column, y = row, integers at pixel centres.
struct RoiPoint {
  double x = 0;
  double y = 0;
};

// One ROI of an OsiriX plist.
struct OsirixRoi {
  int index = 0;                 // position in the image's ROIs array, from 0
  std::string name;              // "Mass", "Calcification", "Cluster", ...
  std::vector<RoiPoint> points;  // Point_px, a closed polygon for areas
};

// The ROIs of the first image of an OsiriX plist `text` (named `name` in errors): top dict ->
// Images (array; the first element is the film) -> ROIs (array) -> each a dict with Name (string),
// NumberOfPoints (integer) and Point_px (array of "(x, y)" strings). Throws DataError naming
// `name`, the line where known and the problem: not a plist, a missing or mistyped key, a point
// that is not "(x, y)", NumberOfPoints disagreeing with Point_px. Other keys are not checked.
std::vector<OsirixRoi> parse_osirix_rois(const std::string& text, const std::string& name);

// Mass ROIs are drawn into the mask.
bool is_inbreast_mass(const OsirixRoi& roi);

// The film id of an INbreast file name: the part before the first '_' (the whole name without
// its extension when there is none).
std::string inbreast_film_id(const std::string& file_name);

// The file name's second '_'-separated part (the patient hash), "" when there is none.
std::string inbreast_patient_hash(const std::string& file_name);

}  // namespace hds::data

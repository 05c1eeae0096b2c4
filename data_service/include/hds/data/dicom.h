// DICOM mammograms through DCMTK: a film's pixels as the standard's grayscale pipeline gives them
// and the facts inference reports (spacing, laterality, view, the references a result needs),
// and a binary DICOM Segmentation of a predicted mask that PACS viewers show on its film.
// Stateless free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hds/data/film_size.h"
#include "hds/data/grey_image.h"

namespace hds::data {

struct DicomFilm {
  GreyImage image;         // bright means dense (see read_dicom_film for the levels)
  std::string patient_id;  // the PatientID tag, "" when missing
  // Millimetres between pixel centres (row, column): Pixel Spacing (0028,0030), else Imager Pixel
  // Spacing (0018,1164) (at the detector); 0 when neither is present. `spacing_tag` names it.
  double row_spacing_mm = 0;
  double col_spacing_mm = 0;
  std::string spacing_tag;  // "PixelSpacing", "ImagerPixelSpacing" or ""
  std::string laterality;   // Image Laterality (0020,0062), else Laterality (0020,0060): L, R, B
  std::string view;         // View Position (0018,5101): CC, MLO, ML, ...
  std::string study_uid;
  std::string study_date;        // StudyDate (YYYYMMDD), "" when missing
  std::string accession_number;  // AccessionNumber, "" when missing
  std::string series_uid;
  std::string sop_instance_uid;
  std::string sop_class_uid;
  // The steps applied, e.g. "rescale 1 * v + 0, window 2048/4096 (LINEAR), MONOCHROME1 inverted".
  std::string pipeline;
};

// Reads an uncompressed, single-frame, one-sample, unsigned 16-bit DICOM image with DCMTK and
// maps the stored values as PS3.3 orders the grayscale pipeline (C.11): bits above BitsStored
// cleared; the Modality LUT Sequence, else Rescale Slope / Intercept; then the first VOI window
// (Window Center / Width with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID) onto 0..65535,
// else the first VOI LUT Sequence item onto its own range; then MONOCHROME1 inverted so that
// bright means dense. Without a VOI the levels stay the stored values (0..2^BitsStored - 1, so
// INbreast's films read as they are stored), turned around when the modality mapping decreases.
// Throws DataError naming the file: not DICOM, no pixel data, too few pixel values, an
// unsupported layout, a malformed LUT or window, more than `max_pixels` (film_size.h).
DicomFilm read_dicom_film(const std::string& path, uint64_t max_pixels = default_max_film_pixels());

// A new DICOM UID (DCMTK's generator under its site root), e.g. for a model as a device.
std::string new_dicom_uid();

// A DICOM instance as another object references it.
struct DicomInstance {
  std::string study_uid;
  std::string series_uid;
  std::string sop_class_uid;
  std::string sop_instance_uid;
};

// Writes `out_path`, a binary DICOM Segmentation (one frame, one segment "Mass", SNOMED CT
// "Morphologically altered structure" / "Mass", algorithm AUTOMATIC `algorithm`) of `mask` (rows x
// cols of the source film, nonzero = mass) on the DICOM film `source_path`: patient and study
// taken from it, a new series, and the film referenced by its series and SOP instance (Common
// Instance Reference and the frame's Derivation Image). The source's Pixel Spacing, when it has
// one, goes into the Pixel Measures. No Frame of Reference: a projection mammogram has no patient
// coordinates to place the frame in, and the derivation reference ties it to the film. Throws
// DataError naming the file and what DCMTK refused. Returns the Segmentation's identifiers.
DicomInstance write_mass_segmentation(const std::string& source_path,
                                      const std::vector<uint8_t>& mask, int rows, int cols,
                                      const std::string& algorithm, const std::string& out_path);

// What a structured report says of one film. Image coordinates as DICOM's SCOORD: x along the
// columns, y down the rows, (0, 0) the top-left corner of the top-left pixel.
struct MassFindings {
  std::string algorithm;          // the Device Observer Name and Algorithm Name
  std::string algorithm_version;  // e.g. the checkpoint's step
  std::string device_uid;         // the Device Observer UID: the model's (new_dicom_uid)
  double mass_probability = 0;    // the film's
  // Millimetres between pixel centres (row, column); 0 when unknown, and then every size is in
  // pixels (UCUM "{pixels}") instead of mm and mm2.
  double row_spacing_mm = 0;
  double col_spacing_mm = 0;
  struct Lesion {
    int top = 0, left = 0, bottom = 0, right = 0;  // the bounding box's pixels, inclusive
    int64_t area_pixels = 0;
    double centre_x = 0, centre_y = 0;
    // The longest diameter: its ends and its length (mm, or pixels without a spacing).
    double diameter_x0 = 0, diameter_y0 = 0, diameter_x1 = 0, diameter_y1 = 0;
    double longest_diameter = 0;
    double peak_probability = 0;  // the highest pixel probability inside it
  };
  std::vector<Lesion> lesions;

  bool spaced() const { return row_spacing_mm > 0 && col_spacing_mm > 0; }
  // A lesion's area: mm2 with a spacing, else pixels.
  double area(const Lesion& lesion) const {
    return static_cast<double>(lesion.area_pixels) *
           (spaced() ? row_spacing_mm * col_spacing_mm : 1.0);
  }
};

// Writes `out_path`, a Comprehensive SR following TID 1500 (Measurement Report) of `findings` on
// the DICOM film `source_path`, whose masses `segmentation` (written by write_mass_segmentation)
// holds as segment 1: patient and study taken from the film, a new series. The content:
//   the device observer (TID 1001/1004; a new UID when `device_uid` is empty), procedure reported:
//   mammography; the film in the Image Library (TID 1600); a film measurement group (TID 1501):
//   finding Mass, its Probability, the algorithm (TID 4019), inferred from the film; a group per
//   lesion (TID 1410), tracking identifier "lesion K" and a new tracking UID, its region the
//   Segmentation's frame (and its source image, the film): Area, Long Axis (inferred from the
//   diameter's ends, a POLYLINE on the film), Width and Height (from the bounding box, a closed
//   POLYLINE), the peak Probability, and its Center (a POINT on the film).
// The film is listed as current evidence, the Segmentation as other evidence. Throws DataError
// naming the file and what DCMTK refused.
void write_mass_report(const std::string& source_path, const DicomInstance& segmentation,
                       const MassFindings& findings, const std::string& out_path);

}  // namespace hds::data

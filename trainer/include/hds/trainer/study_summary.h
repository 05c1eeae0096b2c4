// What `infer` says of a study rather than of a film: the DICOM films of one Study Instance UID
// grouped by breast (Image Laterality), each breast's highest mass probability and the view it
// was seen on, the views a screening study should have (CC and MLO) that are missing, and every
// lesion found on any view. Plain data in, JSON and Markdown text out; no LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hds::trainer {

// One DICOM film as infer reported it.
struct FilmFinding {
  std::string name;   // its outputs' name under --out
  std::string input;  // the file read
  std::string study_uid;
  std::string patient_id;
  std::string study_date;  // YYYYMMDD or ""
  std::string accession_number;
  std::string laterality;  // "L", "R"; anything else is an unknown breast
  std::string view;        // View Position: CC, MLO, ML, ...
  double mass_probability = 0;
  struct Lesion {
    double centre_x = 0, centre_y = 0;  // image coordinates (pixels)
    int64_t area_pixels = 0;
    double area_mm2 = -1;             // < 0: the film has no spacing
    double longest_diameter_mm = -1;  // < 0: the film has no spacing
    double peak_probability = 0;
  };
  std::vector<Lesion> lesions;
};

struct StudySummary {
  std::string study_uid;
  std::string json;      // see summarize_studies
  std::string markdown;  // the same for a person
};

// One summary per Study Instance UID among `films`, in order of first appearance. A breast is
// called positive when its highest film probability exceeds `threshold`; `model` names the weights.
// The JSON: study_uid, patient_id, study_date, accession_number, model, threshold, and breasts
// (right, left, then unknown; only those imaged), each with laterality, highest_mass_probability,
// view and film of that probability, positive, views, missing_views (of CC and MLO), films (name,
// input, view, mass_probability) and lesions (film, view, lesion number on its film, centre,
// area_pixels, area_mm2, longest_diameter_mm, peak_probability; mm figures null without spacing).
std::vector<StudySummary> summarize_studies(const std::vector<FilmFinding>& films, double threshold,
                                            const std::string& model);

}  // namespace hds::trainer

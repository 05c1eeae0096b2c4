// Scoring a trained model's whole-film predictions the two ways the evaluation reports them
// (docs/design.md §3, "Evaluation and selection"), without LibTorch:
//   reference  as the authors' evaluation: mask = foreground probability > 0.5; Dice and pixel
//              sensitivity per film, averaged over all films (an empty prediction on a mass-free
//              film scores 1); the image probability from the training MIL rule;
//   lesion     Dice over films with masses only; lesion sensitivity = share of ground-truth masses
//              (8-connected components of the mask) touched by a predicted 8-connected component;
//              false positives per image (FPI) = predicted components touching no mass; FROC =
//              lesion sensitivity against FPI as the mask threshold sweeps.
// Classification: accuracy, ROC AUC, F1, precision and recall at 0.5. Every figure gets a 95 %
// bootstrap interval over patients, and the same figures of the trivial baselines (an all-empty
// mask, an all-negative and an all-positive classifier), so that no number is read alone.
// Undefined figures (AUC with one class, precision with no positive call) are NaN.
// Stateless functions and plain data; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hds::scoring {

// Dice of two binary masks of `pixels` pixels (nonzero = mass); 1 when both are empty.
double dice(const uint8_t* predicted, const uint8_t* truth, size_t pixels);
// Share of the truth's mass pixels that are predicted; 1 when the truth has none.
double pixel_sensitivity(const uint8_t* predicted, const uint8_t* truth, size_t pixels);

// One 8-connected component of a mask: its size and bounding box (inclusive).
struct Component {
  int pixels = 0;
  int top = 0;
  int left = 0;
  int bottom = 0;
  int right = 0;
};
struct Components {
  std::vector<int32_t> labels;  // per pixel: 0 background, k >= 1 the pixel's component k - 1
  std::vector<Component> components;
};
// The 8-connected components of the nonzero pixels of a rows x cols mask, numbered in raster
// order of their first pixel.
Components connected_components(const uint8_t* mask, int rows, int cols);

// Where a component lies and how far it reaches, in image coordinates: x along the columns, y down
// the rows, (0, 0) the top-left corner of the top-left pixel, so pixel (r, c) covers
// [c, c + 1) x [r, r + 1) (DICOM's convention for spatial coordinates in reports).
struct ComponentShape {
  double centre_x = 0;  // the mean of its pixels' centres
  double centre_y = 0;
  // Its longest extent: the two pixel corners farthest apart, from (x0, y0) to (x1, y1), and
  // their distance with x scaled by `x_scale` and y by `y_scale` (a film's pixel spacing: which
  // pair is farthest depends on it). A single pixel reaches across its diagonal.
  double x0 = 0;
  double y0 = 0;
  double x1 = 0;
  double y1 = 0;
  double longest_extent = 0;
};

// The shape of each of `found`'s components (same order), on its rows x cols grid.
std::vector<ComponentShape> component_shapes(const Components& found, int rows, int cols,
                                             double x_scale = 1, double y_scale = 1);

// Lesions of one film at one threshold.
struct LesionCount {
  int masses = 0;           // ground-truth components
  int masses_found = 0;     // of those, touched by a predicted component
  int false_positives = 0;  // predicted components that touch no mass
};
LesionCount count_lesions(const uint8_t* predicted, const uint8_t* truth, int rows, int cols);

// The operating threshold: a pixel is mass, and a film positive, when its probability exceeds it
// (the paper's protocols). Every figure but the FROC sweep is taken there; eval and infer mark
// masks and call films with it.
constexpr double kOperatingThreshold = 0.5;

// The mask thresholds of the FROC sweep: 0.05, 0.10, ..., 0.95 (0.5 among them).
const std::vector<double>& froc_thresholds();
// The index of 0.5 in froc_thresholds(): the operating point of every other figure.
int operating_threshold_index();

// What the protocols need of one film, computed once from its prediction.
struct FilmScore {
  std::string id;
  std::string patient;
  bool has_mass = false;
  double dice = 0;               // at 0.5
  double pixel_sensitivity = 0;  // at 0.5
  double mass_probability = 0;
  std::vector<LesionCount> lesions;  // one per froc_thresholds() entry
};
// Scores a film's foreground probabilities (rows x cols) against its truth mask.
FilmScore score_film(const std::string& id, const std::string& patient, const float* foreground,
                     const uint8_t* truth, int rows, int cols, double mass_probability);
// The same film as the all-empty mask would score it (probability 0 everywhere).
FilmScore score_empty_prediction(const FilmScore& film);

// Classification at `threshold` (probability > threshold is positive).
struct ClassificationFigures {
  double accuracy = 0;
  double auc = 0;
  double f1 = 0;
  double precision = 0;
  double recall = 0;
};
ClassificationFigures classify(const std::vector<double>& probabilities,
                               const std::vector<int>& labels,
                               double threshold = kOperatingThreshold);
// Area under the ROC curve (Mann-Whitney; ties count one half); NaN with only one class.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);
struct CurvePoint {
  double x = 0;
  double y = 0;
  double threshold = 0;
};
// ROC: (false-positive rate, true-positive rate) from (0, 0) to (1, 1), one point per distinct
// score, in order of decreasing threshold. Empty with only one class.
std::vector<CurvePoint> roc_curve(const std::vector<double>& scores,
                                  const std::vector<int>& labels);

// Every figure of both protocols over a set of films.
struct Figures {
  double reference_dice = 0;               // mean over all films
  double reference_pixel_sensitivity = 0;  // mean over all films
  double lesion_dice = 0;                  // mean over films with masses
  double lesion_sensitivity = 0;           // masses found / masses, at 0.5
  double false_positives_per_image = 0;    // at 0.5
  ClassificationFigures classification;
};
// The figures of films[i] for i in `chosen` (indices may repeat: a bootstrap sample).
Figures summarize(const std::vector<FilmScore>& films, const std::vector<int>& chosen);
Figures summarize(const std::vector<FilmScore>& films);

// A figure and its 95 % bootstrap interval (NaN bounds when no resample defines it).
struct Estimate {
  double value = 0;
  double low = 0;
  double high = 0;
};
struct FigureEstimates {
  Estimate reference_dice, reference_pixel_sensitivity, lesion_dice, lesion_sensitivity,
      false_positives_per_image, accuracy, auc, f1, precision, recall;
};
// Resamples the patients `rounds` times with replacement (a patient brings all its films),
// seeded, and takes the 2.5th and 97.5th percentiles of each figure.
FigureEstimates bootstrap(const std::vector<FilmScore>& films, int rounds, uint64_t seed);

// FROC: (false positives per image, lesion sensitivity) at each froc_thresholds() entry.
std::vector<CurvePoint> froc_curve(const std::vector<FilmScore>& films);

}  // namespace hds::scoring

#include "hds/scoring/scoring.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <utility>

namespace hds::scoring {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double numerator, double denominator) {
  return denominator == 0 ? kNaN : numerator / denominator;
}

// Lesions of a predicted mask against truth components computed once per film.
LesionCount count_against(const uint8_t* predicted, const Components& truth, int rows, int cols) {
  const Components found = connected_components(predicted, rows, cols);
  std::vector<bool> mass_touched(truth.components.size(), false);
  std::vector<bool> prediction_touches(found.components.size(), false);
  const size_t pixels = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  for (size_t i = 0; i < pixels; ++i) {
    if (found.labels[i] > 0 && truth.labels[i] > 0) {
      mass_touched[truth.labels[i] - 1] = true;
      prediction_touches[found.labels[i] - 1] = true;
    }
  }
  LesionCount count;
  count.masses = static_cast<int>(truth.components.size());
  count.masses_found = static_cast<int>(std::count(mass_touched.begin(), mass_touched.end(), true));
  count.false_positives =
      static_cast<int>(std::count(prediction_touches.begin(), prediction_touches.end(), false));
  return count;
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

// The `q` quantile (0..1) of the finite values, linearly interpolated; NaN when there are none.
double quantile(std::vector<double> values, double q) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

}  // namespace

double dice(const uint8_t* predicted, const uint8_t* truth, size_t pixels) {
  size_t overlap = 0, total = 0;
  for (size_t i = 0; i < pixels; ++i) {
    const bool p = predicted[i] != 0, t = truth[i] != 0;
    overlap += p && t;
    total += static_cast<size_t>(p) + static_cast<size_t>(t);
  }
  return total == 0 ? 1.0 : 2.0 * static_cast<double>(overlap) / static_cast<double>(total);
}

double pixel_sensitivity(const uint8_t* predicted, const uint8_t* truth, size_t pixels) {
  size_t found = 0, mass = 0;
  for (size_t i = 0; i < pixels; ++i) {
    if (truth[i] == 0) continue;
    ++mass;
    found += predicted[i] != 0;
  }
  return mass == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(mass);
}

Components connected_components(const uint8_t* mask, int rows, int cols) {
  Components result;
  result.labels.assign(static_cast<size_t>(rows) * static_cast<size_t>(cols), 0);
  std::vector<int> stack;
  for (int start = 0; start < rows * cols; ++start) {
    if (mask[start] == 0 || result.labels[start] != 0) continue;
    const auto label = static_cast<int32_t>(result.components.size() + 1);
    Component component{0, start / cols, start % cols, start / cols, start % cols};
    result.labels[start] = label;
    stack.assign(1, start);
    while (!stack.empty()) {
      const int at = stack.back();
      stack.pop_back();
      const int r = at / cols, c = at % cols;
      ++component.pixels;
      component.top = std::min(component.top, r);
      component.bottom = std::max(component.bottom, r);
      component.left = std::min(component.left, c);
      component.right = std::max(component.right, c);
      for (int dr = -1; dr <= 1; ++dr) {
        for (int dc = -1; dc <= 1; ++dc) {
          const int nr = r + dr, nc = c + dc;
          if (nr < 0 || nr >= rows || nc < 0 || nc >= cols) continue;
          const int next = nr * cols + nc;
          if (mask[next] != 0 && result.labels[next] == 0) {
            result.labels[next] = label;
            stack.push_back(next);
          }
        }
      }
    }
    result.components.push_back(component);
  }
  return result;
}

std::vector<ComponentShape> component_shapes(const Components& found, int rows, int cols,
                                             double x_scale, double y_scale) {
  // Each component's leftmost and rightmost pixel on each of its rows: the outer corners of
  // those pixels include every corner of its convex hull, so the farthest pair is among them.
  struct RowSpan {
    int left = std::numeric_limits<int>::max();
    int right = -1;
  };
  std::vector<std::vector<RowSpan>> spans(found.components.size());
  std::vector<double> sum_x(found.components.size(), 0), sum_y(found.components.size(), 0);
  for (size_t k = 0; k < found.components.size(); ++k) {
    spans[k].resize(static_cast<size_t>(found.components[k].bottom - found.components[k].top + 1));
  }
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const int32_t label = found.labels[static_cast<size_t>(r) * cols + c];
      if (label == 0) continue;
      const auto k = static_cast<size_t>(label - 1);
      RowSpan& span = spans[k][static_cast<size_t>(r - found.components[k].top)];
      span.left = std::min(span.left, c);
      span.right = std::max(span.right, c);
      sum_x[k] += c + 0.5;
      sum_y[k] += r + 0.5;
    }
  }
  std::vector<ComponentShape> shapes(found.components.size());
  for (size_t k = 0; k < found.components.size(); ++k) {
    ComponentShape& shape = shapes[k];
    shape.centre_x = sum_x[k] / found.components[k].pixels;
    shape.centre_y = sum_y[k] / found.components[k].pixels;
    std::vector<std::pair<double, double>> corners;  // in scaled units
    for (size_t i = 0; i < spans[k].size(); ++i) {
      const double top = static_cast<double>(found.components[k].top + static_cast<int>(i));
      for (const double x : {static_cast<double>(spans[k][i].left), spans[k][i].right + 1.0}) {
        corners.emplace_back(x * x_scale, top * y_scale);
        corners.emplace_back(x * x_scale, (top + 1) * y_scale);
      }
    }
    // The convex hull (monotone chain) keeps the pairwise search small.
    std::sort(corners.begin(), corners.end());
    corners.erase(std::unique(corners.begin(), corners.end()), corners.end());
    const auto turn = [](const std::pair<double, double>& o, const std::pair<double, double>& a,
                         const std::pair<double, double>& b) {
      return (a.first - o.first) * (b.second - o.second) -
             (a.second - o.second) * (b.first - o.first);
    };
    std::vector<std::pair<double, double>> hull(2 * corners.size());
    size_t n = 0;
    for (size_t i = 0; i < corners.size(); ++i) {
      while (n >= 2 && turn(hull[n - 2], hull[n - 1], corners[i]) <= 0) --n;
      hull[n++] = corners[i];
    }
    for (size_t i = corners.size() - 1, lower = n + 1; i-- > 0;) {
      while (n >= lower && turn(hull[n - 2], hull[n - 1], corners[i]) <= 0) --n;
      hull[n++] = corners[i];
    }
    hull.resize(n - 1);
    double farthest = -1;
    for (size_t i = 0; i < hull.size(); ++i) {
      for (size_t j = i + 1; j < hull.size(); ++j) {
        const double d = std::hypot(hull[i].first - hull[j].first, hull[i].second - hull[j].second);
        if (d > farthest) {
          farthest = d;
          shape.x0 = hull[i].first / x_scale;
          shape.y0 = hull[i].second / y_scale;
          shape.x1 = hull[j].first / x_scale;
          shape.y1 = hull[j].second / y_scale;
        }
      }
    }
    shape.longest_extent = farthest;
  }
  return shapes;
}

LesionCount count_lesions(const uint8_t* predicted, const uint8_t* truth, int rows, int cols) {
  return count_against(predicted, connected_components(truth, rows, cols), rows, cols);
}

const std::vector<double>& froc_thresholds() {
  static const std::vector<double> thresholds = [] {
    std::vector<double> values;
    for (int k = 1; k <= 19; ++k) values.push_back(0.05 * k);
    return values;
  }();
  return thresholds;
}

int operating_threshold_index() {
  static const int index = [] {
    const auto& thresholds = froc_thresholds();
    const auto at = std::find_if(thresholds.begin(), thresholds.end(),
                                 [](double t) { return std::abs(t - kOperatingThreshold) < 1e-9; });
    return static_cast<int>(at - thresholds.begin());
  }();
  return index;
}

FilmScore score_film(const std::string& id, const std::string& patient, const float* foreground,
                     const uint8_t* truth, int rows, int cols, double mass_probability) {
  const size_t pixels = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  FilmScore score;
  score.id = id;
  score.patient = patient;
  score.has_mass = std::any_of(truth, truth + pixels, [](uint8_t v) { return v != 0; });
  score.mass_probability = mass_probability;
  const Components masses = connected_components(truth, rows, cols);
  std::vector<uint8_t> predicted(pixels);
  const auto& thresholds = froc_thresholds();
  for (size_t k = 0; k < thresholds.size(); ++k) {
    for (size_t i = 0; i < pixels; ++i) predicted[i] = foreground[i] > thresholds[k];
    score.lesions.push_back(count_against(predicted.data(), masses, rows, cols));
    if (static_cast<int>(k) == operating_threshold_index()) {
      score.dice = dice(predicted.data(), truth, pixels);
      score.pixel_sensitivity = hds::scoring::pixel_sensitivity(predicted.data(), truth, pixels);
    }
  }
  return score;
}

FilmScore score_empty_prediction(const FilmScore& film) {
  FilmScore empty = film;
  empty.mass_probability = 0;
  // Dice and pixel sensitivity of an empty mask: 1 on a mass-free film, 0 on one with a mass.
  empty.dice = film.has_mass ? 0 : 1;
  empty.pixel_sensitivity = film.has_mass ? 0 : 1;
  for (LesionCount& count : empty.lesions) {
    count.masses_found = 0;
    count.false_positives = 0;
  }
  return empty;
}

ClassificationFigures classify(const std::vector<double>& probabilities,
                               const std::vector<int>& labels, double threshold) {
  double tp = 0, fp = 0, tn = 0, fn = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    const bool called = probabilities[i] > threshold;
    const bool positive = labels[i] == 1;
    tp += called && positive;
    fp += called && !positive;
    tn += !called && !positive;
    fn += !called && positive;
  }
  ClassificationFigures figures;
  figures.accuracy = ratio(tp + tn, tp + tn + fp + fn);
  figures.precision = ratio(tp, tp + fp);
  figures.recall = ratio(tp, tp + fn);
  figures.f1 = ratio(2 * tp, 2 * tp + fp + fn);
  figures.auc = roc_auc(probabilities, labels);
  return figures;
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U from mid-ranks: tied scores share the mean of their ranks.
  double positive_rank_sum = 0, positives = 0, negatives = 0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    while (end < order.size() && scores[order[end]] == scores[order[begin]]) ++end;
    const double mid_rank = (static_cast<double>(begin + 1) + static_cast<double>(end)) / 2;
    for (size_t k = begin; k < end; ++k) {
      if (labels[order[k]] == 1) {
        positive_rank_sum += mid_rank;
        ++positives;
      } else {
        ++negatives;
      }
    }
    begin = end;
  }
  return ratio(positive_rank_sum - positives * (positives + 1) / 2, positives * negatives);
}

std::vector<CurvePoint> roc_curve(const std::vector<double>& scores,
                                  const std::vector<int>& labels) {
  const double positives = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
  const double negatives = static_cast<double>(labels.size()) - positives;
  if (positives == 0 || negatives == 0) return {};
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<CurvePoint> curve = {{0, 0, std::numeric_limits<double>::infinity()}};
  double tp = 0, fp = 0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    for (; end < order.size() && scores[order[end]] == scores[order[begin]]; ++end) {
      (labels[order[end]] == 1 ? tp : fp) += 1;
    }
    curve.push_back({fp / negatives, tp / positives, scores[order[begin]]});
    begin = end;
  }
  return curve;
}

Figures summarize(const std::vector<FilmScore>& films, const std::vector<int>& chosen) {
  const int at = operating_threshold_index();
  std::vector<double> dice_all, sensitivity_all, dice_with_mass, probabilities;
  std::vector<int> labels;
  double masses = 0, found = 0, false_positives = 0;
  for (int index : chosen) {
    const FilmScore& film = films[static_cast<size_t>(index)];
    dice_all.push_back(film.dice);
    sensitivity_all.push_back(film.pixel_sensitivity);
    if (film.has_mass) dice_with_mass.push_back(film.dice);
    probabilities.push_back(film.mass_probability);
    labels.push_back(film.has_mass ? 1 : 0);
    const LesionCount& count = film.lesions[static_cast<size_t>(at)];
    masses += count.masses;
    found += count.masses_found;
    false_positives += count.false_positives;
  }
  Figures figures;
  figures.reference_dice = mean_of(dice_all);
  figures.reference_pixel_sensitivity = mean_of(sensitivity_all);
  figures.lesion_dice = mean_of(dice_with_mass);
  figures.lesion_sensitivity = ratio(found, masses);
  figures.false_positives_per_image = ratio(false_positives, static_cast<double>(chosen.size()));
  figures.classification = classify(probabilities, labels);
  return figures;
}

Figures summarize(const std::vector<FilmScore>& films) {
  std::vector<int> all(films.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return summarize(films, all);
}

FigureEstimates bootstrap(const std::vector<FilmScore>& films, int rounds, uint64_t seed) {
  // Patients in order of first appearance, each with its films.
  std::vector<std::vector<int>> patients;
  std::map<std::string, size_t> patient_index;
  for (size_t i = 0; i < films.size(); ++i) {
    const auto [it, added] = patient_index.emplace(films[i].patient, patients.size());
    if (added) patients.emplace_back();
    patients[it->second].push_back(static_cast<int>(i));
  }
  using Pick = std::function<double(const Figures&)>;
  const std::array<Pick, 10> picks = {
      [](const Figures& f) { return f.reference_dice; },
      [](const Figures& f) { return f.reference_pixel_sensitivity; },
      [](const Figures& f) { return f.lesion_dice; },
      [](const Figures& f) { return f.lesion_sensitivity; },
      [](const Figures& f) { return f.false_positives_per_image; },
      [](const Figures& f) { return f.classification.accuracy; },
      [](const Figures& f) { return f.classification.auc; },
      [](const Figures& f) { return f.classification.f1; },
      [](const Figures& f) { return f.classification.precision; },
      [](const Figures& f) { return f.classification.recall; }};
  std::array<std::vector<double>, 10> samples;
  // mt19937_64's sequence is fixed by the standard (unlike the distributions): the same seed
  // gives the same intervals everywhere.
  std::mt19937_64 generator(seed);
  for (int round = 0; round < rounds && !patients.empty(); ++round) {
    std::vector<int> chosen;
    for (size_t k = 0; k < patients.size(); ++k) {
      const auto& drawn = patients[generator() % patients.size()];
      chosen.insert(chosen.end(), drawn.begin(), drawn.end());
    }
    const Figures figures = summarize(films, chosen);
    for (size_t f = 0; f < picks.size(); ++f) samples[f].push_back(picks[f](figures));
  }
  const Figures whole = summarize(films);
  std::array<Estimate, 10> estimates;
  for (size_t f = 0; f < picks.size(); ++f) {
    estimates[f] = {picks[f](whole), quantile(samples[f], 0.025), quantile(samples[f], 0.975)};
  }
  FigureEstimates result;
  result.reference_dice = estimates[0];
  result.reference_pixel_sensitivity = estimates[1];
  result.lesion_dice = estimates[2];
  result.lesion_sensitivity = estimates[3];
  result.false_positives_per_image = estimates[4];
  result.accuracy = estimates[5];
  result.auc = estimates[6];
  result.f1 = estimates[7];
  result.precision = estimates[8];
  result.recall = estimates[9];
  return result;
}

std::vector<CurvePoint> froc_curve(const std::vector<FilmScore>& films) {
  std::vector<CurvePoint> curve;
  const auto& thresholds = froc_thresholds();
  for (size_t k = 0; k < thresholds.size(); ++k) {
    double masses = 0, found = 0, false_positives = 0;
    for (const FilmScore& film : films) {
      masses += film.lesions[k].masses;
      found += film.lesions[k].masses_found;
      false_positives += film.lesions[k].false_positives;
    }
    curve.push_back({ratio(false_positives, static_cast<double>(films.size())),
                     ratio(found, masses), thresholds[k]});
  }
  return curve;
}

}  // namespace hds::scoring

// Synthetic mammograms. Everything is painted in a float canvas (grey levels 0..255) from a
// counter-based generator keyed by (seed, index): no std:: distribution is involved, so a film
// depends only on its arguments (and the platform's libm for sin/cos, which the final rounding to
// 8 bits hides in practice). Geometry scales with the film size, so small films look alike.
#include "hds/data/phantom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "counter_rng.h"
#include "hds/data/dataset.h"
#include "hds/data/folder_writer.h"

namespace hds::data {
namespace {

using detail::CounterRng;
using detail::derive_key;
using detail::domain;
using detail::RngDomain;

constexpr double kPi = 3.14159265358979323846;
constexpr double kGoldenFraction = 0.61803398874989484820;  // (sqrt(5) - 1) / 2

double smoothstep(double edge0, double edge1, double x) {
  const double t = std::clamp((x - edge0) / (edge1 - edge0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// The breast: the half of an ellipse whose centre lies on the chest-wall edge of the film.
struct Breast {
  bool chest_wall_left = true;
  double centre_row = 0;
  double semi_rows = 0;  // half-height at the chest wall
  double semi_cols = 0;  // depth from the chest wall to the nipple
  int cols = 0;

  // Distance of column `col`'s centre from the chest wall, in pixels.
  double depth(double col) const { return chest_wall_left ? col + 0.5 : cols - (col + 0.5); }

  // Elliptical radius of a pixel: < 1 inside the breast, 0 at the chest wall's centre.
  double radius(double row, double col) const {
    const double x = depth(col) / semi_cols;
    const double y = (row + 0.5 - centre_row) / semi_rows;
    return std::sqrt(x * x + y * y);
  }
  bool contains(double row, double col) const { return radius(row, col) <= 1.0; }

  // Film column of a point `depth` pixels from the chest wall (as a pixel-centre coordinate).
  double column_at_depth(double depth_px) const {
    return chest_wall_left ? depth_px - 0.5 : cols - depth_px - 0.5;
  }
};

struct Spicule {
  double angle = 0;
  double length = 0;      // from the mass centre, pixels
  double half_width = 0;  // pixels
};

struct Mass {
  double row = 0;  // centre, pixel-centre coordinates
  double col = 0;
  double radius_major = 0;
  double radius_minor = 0;
  double angle = 0;  // of the major axis
  double brightness = 0;
  std::vector<Spicule> spicules;  // empty for a circumscribed mass

  // Normalised elliptical distance from the centre: 1 on the mass outline.
  double distance(double r, double c) const {
    const double dr = r - row, dc = c - col;
    const double along = dc * std::cos(angle) + dr * std::sin(angle);
    const double across = -dc * std::sin(angle) + dr * std::cos(angle);
    const double a = along / radius_major, b = across / radius_minor;
    return std::sqrt(a * a + b * b);
  }

  // How far the mass and its spicules reach from the centre, pixels.
  double reach() const {
    double reach = 1.3 * radius_major;
    for (const Spicule& spicule : spicules) reach = std::max(reach, spicule.length);
    return reach + 2;
  }
};

// Smooth random texture: values on a coarse lattice in [-1, 1], smoothly interpolated.
class ValueNoise {
 public:
  ValueNoise(uint64_t key, int rows, int cols, double cell)
      : cell_(cell),
        lattice_rows_(static_cast<int>(rows / cell) + 2),
        lattice_cols_(static_cast<int>(cols / cell) + 2),
        values_(static_cast<size_t>(lattice_rows_) * lattice_cols_) {
    CounterRng rng(key);
    for (double& value : values_) value = rng.uniform(-1.0, 1.0);
  }

  double at(int row, int col) const {
    const double y = row / cell_, x = col / cell_;
    const int r0 = static_cast<int>(y), c0 = static_cast<int>(x);
    const double ty = smoothstep(0, 1, y - r0), tx = smoothstep(0, 1, x - c0);
    const double top = lerp(value(r0, c0), value(r0, c0 + 1), tx);
    const double bottom = lerp(value(r0 + 1, c0), value(r0 + 1, c0 + 1), tx);
    return lerp(top, bottom, ty);
  }

 private:
  static double lerp(double a, double b, double t) { return a + (b - a) * t; }
  double value(int r, int c) const { return values_[static_cast<size_t>(r) * lattice_cols_ + c]; }

  double cell_;
  int lattice_rows_;
  int lattice_cols_;
  std::vector<double> values_;
};

Breast random_breast(CounterRng& rng, int index, int rows, int cols) {
  Breast breast;
  breast.chest_wall_left = index % 2 == 0;
  breast.cols = cols;
  breast.centre_row = rows * (0.5 + rng.uniform(-0.04, 0.04));
  breast.semi_rows = rows * rng.uniform(0.38, 0.45);
  breast.semi_cols = cols * rng.uniform(0.72, 0.88);  // leaves blank film beyond the nipple
  return breast;
}

std::vector<Spicule> random_spicules(CounterRng& rng, double radius) {
  const int count = 6 + static_cast<int>(rng.below(7));
  std::vector<Spicule> spicules(count);
  for (int k = 0; k < count; ++k) {
    spicules[k].angle = 2 * kPi * k / count + rng.uniform(-0.3, 0.3);
    spicules[k].length = radius * rng.uniform(1.5, 2.4);
    spicules[k].half_width = std::max(0.8, radius * 0.08);
  }
  return spicules;
}

// True when the mass's bounding circle lies well inside the breast.
bool fits_in_breast(const Breast& breast, const Mass& mass) {
  const double r = mass.radius_major;
  for (const auto& [dr, dc] : {std::pair{-r, 0.0}, {r, 0.0}, {0.0, -r}, {0.0, r}})
    if (breast.radius(mass.row + dr - 0.5, mass.col + dc - 0.5) > 0.9) return false;
  return true;
}

Mass random_mass(CounterRng& rng, const Breast& breast, int cols) {
  Mass mass;
  mass.radius_major = cols * rng.uniform(0.03, 0.08);
  mass.radius_minor = mass.radius_major * rng.uniform(0.7, 1.0);
  mass.angle = rng.uniform(0, kPi);
  mass.brightness = rng.uniform(55, 85);
  // Rejection sampling in the breast's elliptical coordinates; shrink if nothing fits.
  for (int attempt = 0;; ++attempt) {
    const double rho = rng.uniform(0.15, 0.7);
    const double theta = rng.uniform(-kPi / 2, kPi / 2);
    mass.col = breast.column_at_depth(rho * breast.semi_cols * std::cos(theta)) + 0.5;
    mass.row = breast.centre_row + rho * breast.semi_rows * std::sin(theta);
    if (fits_in_breast(breast, mass)) break;
    if (attempt % 16 == 15) {
      mass.radius_major *= 0.8;
      mass.radius_minor *= 0.8;
    }
  }
  if (rng.below(2) == 1) mass.spicules = random_spicules(rng, mass.radius_major);
  return mass;
}

// Brightness a spiculated mass's spicules add at (r, c): thin bright lines fading outwards.
double spicule_brightness(const Mass& mass, double r, double c) {
  double strongest = 0;
  for (const Spicule& spicule : mass.spicules) {
    const double dr = r - mass.row, dc = c - mass.col;
    const double along = dc * std::cos(spicule.angle) + dr * std::sin(spicule.angle);
    if (along < 0.5 * mass.radius_major || along > spicule.length) continue;
    const double across = std::abs(-dc * std::sin(spicule.angle) + dr * std::cos(spicule.angle));
    const double profile = std::max(0.0, 1 - across / spicule.half_width);
    strongest = std::max(strongest, profile * (1 - along / spicule.length));
  }
  return 0.6 * mass.brightness * strongest;
}

// Tissue: brighter toward the chest wall, thinner (darker) toward the skin, textured.
void paint_tissue(const Breast& breast, uint64_t seed, int index, PhantomFilm& film,
                  std::vector<float>& canvas) {
  const ValueNoise coarse(
      derive_key({domain(RngDomain::kPhantomTexture), seed, uint64_t(index), 0}), film.rows,
      film.cols, std::max(4.0, film.cols / 10.0));
  const ValueNoise fine(derive_key({domain(RngDomain::kPhantomTexture), seed, uint64_t(index), 1}),
                        film.rows, film.cols, std::max(3.0, film.cols / 32.0));
  const CounterRng grain(
      derive_key({domain(RngDomain::kPhantomPixelNoise), seed, uint64_t(index)}));
  for (int r = 0; r < film.rows; ++r) {
    for (int c = 0; c < film.cols; ++c) {
      const size_t i = static_cast<size_t>(r) * film.cols + c;
      const uint64_t noise = grain.at(i);
      const double rho = breast.radius(r, c);
      if (rho > 1) {
        canvas[i] = static_cast<float>(noise % 9);  // blank film: levels 0..8
        continue;
      }
      const double depth = std::min(1.0, breast.depth(c) / breast.semi_cols);
      const double thickness = 0.5 + 0.5 * smoothstep(1.0, 0.8, rho);
      const double texture = 0.65 * coarse.at(r, c) + 0.35 * fine.at(r, c);
      const double level = (60 + 90 * (1 - depth)) * thickness + 30 * texture * (1 - 0.4 * depth);
      canvas[i] = static_cast<float>(std::max(24.0, level) + static_cast<double>(noise % 7) - 3);
    }
  }
}

void paint_mass(const Breast& breast, const Mass& mass, PhantomFilm& film,
                std::vector<float>& canvas) {
  const double reach = mass.reach();
  const int r_begin = std::max(0, static_cast<int>(mass.row - reach));
  const int r_end = std::min(film.rows, static_cast<int>(mass.row + reach) + 1);
  const int c_begin = std::max(0, static_cast<int>(mass.col - reach));
  const int c_end = std::min(film.cols, static_cast<int>(mass.col + reach) + 1);
  for (int r = r_begin; r < r_end; ++r) {
    for (int c = c_begin; c < c_end; ++c) {
      if (!breast.contains(r, c)) continue;
      const size_t i = static_cast<size_t>(r) * film.cols + c;
      const double rc = r + 0.5, cc = c + 0.5;
      const double distance = mass.distance(rc, cc);
      const double blob = mass.brightness * (1 - smoothstep(0.75, 1.25, distance));
      canvas[i] += static_cast<float>(std::max(blob, spicule_brightness(mass, rc, cc)));
      if (distance <= 1) film.mask[i] = 1;
    }
  }
}

// Whether film `index` of family `seed` holds masses. The films' positions on a golden-ratio
// (Kronecker) sequence from a start drawn per family are spread so evenly that any run of n
// consecutive films holds n * (1 - mass_free_share) films with masses, give or take about one;
// independent draws would leave a 16-film split with anywhere from 1 to 8. The sequence does not
// follow the index's parity, which places the breast on the left or the right.
bool holds_masses(uint64_t seed, int index, double mass_free_share) {
  CounterRng family(derive_key({domain(RngDomain::kPhantomFamily), seed}));
  const double position = std::fmod(family.uniform(0, 1) + index * kGoldenFraction, 1.0);
  return position >= mass_free_share;
}

}  // namespace

PhantomFilm make_phantom(uint64_t seed, int index, int rows, int cols, double mass_free_share) {
  if (rows < kPhantomMinSide || cols < kPhantomMinSide || index < 0)
    throw std::invalid_argument(
        "make_phantom: film " + std::to_string(index) + " of " + std::to_string(rows) + "x" +
        std::to_string(cols) +
        ": needs index >= 0 and rows, cols >= " + std::to_string(kPhantomMinSide));
  if (!(mass_free_share >= 0 && mass_free_share <= 1))
    throw std::invalid_argument("make_phantom: mass_free_share = " +
                                std::to_string(mass_free_share) + ": must be in [0, 1]");
  PhantomFilm film;
  film.rows = rows;
  film.cols = cols;
  film.mask.assign(static_cast<size_t>(rows) * cols, 0);
  std::vector<float> canvas(film.mask.size());

  CounterRng rng(derive_key({domain(RngDomain::kPhantomFilm), seed, uint64_t(index)}));
  const Breast breast = random_breast(rng, index, rows, cols);
  paint_tissue(breast, seed, index, film, canvas);
  if (holds_masses(seed, index, mass_free_share)) {
    // One mass in three films of four, as in screening; two or three in the others.
    film.mass_count = rng.below(4) == 0 ? 2 + static_cast<int>(rng.below(2)) : 1;
  }
  for (int m = 0; m < film.mass_count; ++m)
    paint_mass(breast, random_mass(rng, breast, cols), film, canvas);

  film.image.resize(canvas.size());
  for (size_t i = 0; i < canvas.size(); ++i)
    film.image[i] = static_cast<uint8_t>(std::lround(std::clamp(canvas[i], 0.0f, 255.0f)));
  return film;
}

std::string phantom_id(int index) {
  char id[32];
  std::snprintf(id, sizeof id, "phantom-%04d", index);
  return id;
}

const char* phantom_split(int index) {
  switch (index % 5) {
    case 3:
      return "val";
    case 4:
      return "test";
    default:
      return "train";
  }
}

void write_phantom_folder(const std::string& out_dir, int count, uint64_t seed, int rows, int cols,
                          double mass_free_share) {
  if (count < 1)
    throw std::invalid_argument("write_phantom_folder: count = " + std::to_string(count) +
                                ": must be at least 1");
  FolderDatasetWriter writer(out_dir);
  for (int index = 0; index < count; ++index) {
    const PhantomFilm film = make_phantom(seed, index, rows, cols, mass_free_share);
    GreyImage image;
    image.rows = rows;
    image.cols = cols;
    image.pixels.assign(film.image.begin(), film.image.end());
    writer.add(phantom_split(index), phantom_id(index), image, film.mask);
  }
  writer.finish();
}

}  // namespace hds::data

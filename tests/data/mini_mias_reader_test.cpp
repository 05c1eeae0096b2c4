// The mini-MIAS reader: on the real copy beside the repository (skipped when absent) its counts
// agree with Info.txt, PGM and PNG give the same pixels, and masks are the annotated circles; on
// small hand-made roots, the circle geometry and every refusal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "hds/data/film_reader.h"
#include "hds/data/mini_mias.h"
#include "hds/data/pgm_io.h"
#include "hds/data/png_io.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

namespace fs = std::filesystem;
using testing::expect_data_error;
using testing::pgm_bytes;
using testing::TempDir;
using testing::write_text;

const fs::path kRealRoot = HDS_MINI_MIAS_DIR;

hds::config::DataConfig mini_mias_config(const fs::path& root) {
  hds::config::DataConfig config;
  config.set_source("mini-mias");
  config.set_folds(0);  // every film in the training split, to count them all
  config.set_use_cache(false);
  config.set_root(root.string());
  return config;
}

// ---- the real copy ----------------------------------------------------------------------------

// Info.txt read by the test itself, independently of the reader: one entry per row.
struct InfoRow {
  std::string id;
  std::string abnormality;
  bool has_centre = false;
  int x = 0, y = 0, radius = 0;
  bool is_mass() const {
    return abnormality == "CIRC" || abnormality == "SPIC" || abnormality == "MISC";
  }
  bool is_other() const {
    return abnormality == "CALC" || abnormality == "ARCH" || abnormality == "ASYM";
  }
};

std::vector<InfoRow> read_info_rows(const fs::path& path) {
  std::ifstream in(path);
  std::vector<InfoRow> rows;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    InfoRow row;
    std::string severity;
    if (!(words >> row.id) || row.id.rfind("mdb", 0) != 0) continue;
    std::string tissue;
    words >> tissue >> row.abnormality >> severity;
    row.has_centre = static_cast<bool>(words >> row.x >> row.y >> row.radius);
    rows.push_back(row);
  }
  return rows;
}

class MiniMiasRealCopy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kRealRoot / "Info.txt")) GTEST_SKIP() << "no mini-MIAS copy at " << kRealRoot;
    rows_ = read_info_rows(kRealRoot / "Info.txt");
    for (const InfoRow& row : rows_)
      if (fs::exists(kRealRoot / "images" / (row.id + ".png"))) present_.insert(row.id);
  }

  // Films whose every mass row lacks coordinates: they hold a mass nobody can draw.
  std::set<std::string> films_without_drawable_mass() const {
    std::map<std::string, std::pair<int, int>> masses;  // id -> (mass rows, with coordinates)
    for (const InfoRow& row : rows_)
      if (row.is_mass()) {
        ++masses[row.id].first;
        masses[row.id].second += row.has_centre ? 1 : 0;
      }
    std::set<std::string> ids;
    for (const auto& [id, counts] : masses)
      if (counts.second == 0) ids.insert(id);
    return ids;
  }

  std::vector<InfoRow> rows_;
  std::set<std::string> present_;  // ids of Info.txt with an image in images/
};

TEST_F(MiniMiasRealCopy, lists_every_film_but_one_whose_only_mass_has_no_coordinates) {
  const auto reader = make_film_reader(mini_mias_config(kRealRoot));
  const FilmList& films = reader->films();
  const std::set<std::string> undrawable = films_without_drawable_mass();
  EXPECT_EQ(undrawable, (std::set<std::string>{"mdb059"}));
  EXPECT_EQ(films.train.size() + undrawable.size(), present_.size());
  EXPECT_EQ(films.report.skipped_films, 1);
  EXPECT_EQ(films.report.skipped_masses, 1);
  EXPECT_TRUE(films.val.empty());
  EXPECT_TRUE(films.test.empty());
  EXPECT_EQ(std::count(films.train.begin(), films.train.end(), "mdb059"), 0);
  ASSERT_GE(films.report.warnings.size(), 1u);
  EXPECT_EQ(films.report.warnings[0].rfind("mdb059: mass without coordinates, skipped", 0), 0u)
      << films.report.warnings[0];
}

TEST_F(MiniMiasRealCopy, loaded_counts_agree_with_info_txt) {
  int mass_rows_with_centre = 0;
  std::set<std::string> films_with_mass, patients;
  for (const InfoRow& row : rows_) {
    if (row.is_mass() && row.has_centre) {
      ++mass_rows_with_centre;
      films_with_mass.insert(row.id);
    }
  }
  const std::set<std::string> undrawable = films_without_drawable_mass();
  for (const std::string& id : present_)
    if (!undrawable.count(id)) patients.insert(std::to_string((std::stoi(id.substr(3)) + 1) / 2));

  ::testing::internal::CaptureStderr();
  const Dataset dataset = load_dataset(mini_mias_config(kRealRoot));
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find("mdb059: mass without coordinates, skipped"), std::string::npos)
      << printed;

  int masses = 0, loaded_with_mass = 0;
  std::set<std::string> loaded_patients;
  for (const Film& film : dataset.train) {
    masses += film.mass_count;
    loaded_with_mass += film.has_mass() ? 1 : 0;
    loaded_patients.insert(film.patient);
  }
  EXPECT_EQ(dataset.train.size(), present_.size() - 1);
  EXPECT_EQ(masses, mass_rows_with_centre);
  EXPECT_EQ(loaded_with_mass, static_cast<int>(films_with_mass.size()));
  EXPECT_EQ(loaded_patients.size(), patients.size());
  EXPECT_EQ(dataset.report.skipped_masses, 1);
  EXPECT_EQ(dataset.report.skipped_films, 1);
  std::cout << "mini-MIAS: " << dataset.train.size() << " films, " << loaded_patients.size()
            << " patients, " << loaded_with_mass << " films with masses, " << masses << " masses, "
            << dataset.report.skipped_masses << " mass(es) and " << dataset.report.skipped_films
            << " film(s) skipped\n";
}

TEST_F(MiniMiasRealCopy, pgm_originals_and_png_images_hold_identical_pixels) {
  int compared = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kRealRoot / "pgm-originals")) {
    const GreyImage pgm = read_pgm(entry.path().string());
    const GreyImage png =
        read_grey_png((kRealRoot / "images" / entry.path().stem()).string() + ".png");
    EXPECT_EQ(pgm.rows, png.rows);
    EXPECT_EQ(pgm.cols, png.cols);
    EXPECT_EQ(pgm.max_level, png.max_level);
    EXPECT_TRUE(pgm.pixels == png.pixels) << entry.path();
    ++compared;
  }
  EXPECT_EQ(compared, 4);
}

TEST_F(MiniMiasRealCopy, a_root_with_only_pgm_originals_reads_the_same_films) {
  TempDir pgm_only;
  fs::copy_file(kRealRoot / "Info.txt", pgm_only.path() / "Info.txt");
  fs::create_directory(pgm_only.path() / "pgm-originals");
  std::vector<std::string> ids;
  for (const fs::directory_entry& entry : fs::directory_iterator(kRealRoot / "pgm-originals")) {
    fs::create_symlink(entry.path(), pgm_only.path() / "pgm-originals" / entry.path().filename());
    ids.push_back(entry.path().stem().string());
  }
  const auto from_pgm = make_film_reader(mini_mias_config(pgm_only.path()));
  const auto from_png = make_film_reader(mini_mias_config(kRealRoot));
  ASSERT_EQ(ids.size(), 4u);
  for (const std::string& id : ids) {
    const RawFilm a = from_pgm->read_film(id), b = from_png->read_film(id);
    EXPECT_TRUE(a.image.pixels == b.image.pixels) << id;
    EXPECT_TRUE(a.mask == b.mask) << id;
    EXPECT_EQ(a.mass_count, b.mass_count) << id;
  }
}

// Integer points (dc, dr) with dc^2 + dr^2 <= r^2 and (x + dc, row + dr) inside the image,
// counted row by row from the circle's half-width.
long lattice_points_in_circle(int x, int row, int r, int rows, int cols) {
  long count = 0;
  for (int dr = -r; dr <= r; ++dr) {
    if (row + dr < 0 || row + dr >= rows) continue;
    const int half = static_cast<int>(std::floor(std::sqrt(double(r) * r - double(dr) * dr)));
    const int first = std::max(0, x - half), last = std::min(cols - 1, x + half);
    count += std::max(0, last - first + 1);
  }
  return count;
}

TEST_F(MiniMiasRealCopy, mask_area_and_centre_match_the_annotated_circle) {
  std::map<std::string, std::vector<InfoRow>> masses;
  for (const InfoRow& row : rows_)
    if (row.is_mass() && row.has_centre) masses[row.id].push_back(row);
  const auto reader = make_film_reader(mini_mias_config(kRealRoot));
  int checked = 0;
  for (const auto& [id, circles] : masses) {
    if (circles.size() != 1) continue;  // one circle: area and centroid are the circle's own
    const InfoRow& circle = circles[0];
    const RawFilm film = reader->read_film(id);
    const int rows = film.image.rows, cols = film.image.cols;
    ASSERT_EQ(rows, 1024) << id;
    const int centre_row = 1023 - circle.y;
    long area = 0;
    double row_sum = 0, col_sum = 0;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)
        if (film.mask[static_cast<size_t>(r) * cols + c]) {
          ++area;
          row_sum += r;
          col_sum += c;
        }
    EXPECT_EQ(area, lattice_points_in_circle(circle.x, centre_row, circle.radius, rows, cols))
        << id;
    const bool inside = circle.x - circle.radius >= 0 && circle.x + circle.radius < cols &&
                        centre_row - circle.radius >= 0 && centre_row + circle.radius < rows;
    if (inside) {
      EXPECT_NEAR(col_sum / area, circle.x, 0.5) << id;
      EXPECT_NEAR(row_sum / area, centre_row, 0.5) << id;
    }
    EXPECT_EQ(film.mass_count, 1) << id;
    ++checked;
  }
  EXPECT_GT(checked, 30);
}

TEST_F(MiniMiasRealCopy, patients_are_film_pairs) {
  const auto reader = make_film_reader(mini_mias_config(kRealRoot));
  EXPECT_EQ(reader->read_film("mdb001").patient, "mias-001");
  EXPECT_EQ(reader->read_film("mdb002").patient, "mias-001");
  EXPECT_EQ(reader->read_film("mdb003").patient, "mias-002");
  for (const std::string& id : reader->films().train) {
    const int number = std::stoi(id.substr(3));
    char expected[32];
    std::snprintf(expected, sizeof expected, "mias-%03d", (number + 1) / 2);
    EXPECT_EQ(mias_patient(id), expected);
  }
}

TEST_F(MiniMiasRealCopy, exclude_leaves_out_films_with_other_abnormalities) {
  std::set<std::string> other;
  for (const InfoRow& row : rows_)
    if (row.is_other()) other.insert(row.id);
  hds::config::DataConfig config = mini_mias_config(kRealRoot);
  config.set_mias_other_abnormalities(hds::config::DataConfig::EXCLUDE);
  const auto reader = make_film_reader(config);
  EXPECT_EQ(reader->films().train.size(), present_.size() - other.size() - 1);  // - mdb059
  for (const std::string& id : reader->films().train) EXPECT_EQ(other.count(id), 0u) << id;
  EXPECT_EQ(make_film_reader(mini_mias_config(kRealRoot))->films().train.size(),
            present_.size() - 1);
}

// ---- hand-made roots ----------------------------------------------------------------------------

// A root with 8x8 PGM films; `info` is the whole of Info.txt.
class TinyMias : public ::testing::Test {
 protected:
  void write_info(const std::string& info) { write_text(dir_.path() / "Info.txt", info); }
  void add_film(const std::string& id, const std::string& folder = ".") {
    write_text(dir_.path() / folder / (id + ".pgm"), pgm_bytes(8, 8, 255, film_levels()));
  }
  static std::vector<uint16_t> film_levels() {
    std::vector<uint16_t> levels(64);
    for (size_t i = 0; i < levels.size(); ++i) levels[i] = static_cast<uint16_t>(100 + i);
    return levels;
  }
  std::unique_ptr<FilmReader> reader() const { return make_film_reader(mini_mias_config(root())); }
  fs::path root() const { return dir_.path(); }
  std::string info_path() const { return dir_.file("Info.txt"); }

  TempDir dir_;
};

TEST_F(TinyMias, circle_centre_counts_y_up_from_the_bottom_row) {
  write_info("MIAS\n\nmdb001 G CIRC B 2 1 1\n");
  add_film("mdb001");
  const RawFilm film = reader()->read_film("mdb001");
  std::vector<uint8_t> expected(64, 0);
  // Centre column 2, row 8 - 1 - 1 = 6; radius 1 takes the four neighbours.
  for (auto [r, c] : {std::pair{6, 2}, {5, 2}, {7, 2}, {6, 1}, {6, 3}}) expected[r * 8 + c] = 1;
  EXPECT_EQ(film.mask, expected);
  EXPECT_EQ(film.image.pixels, film_levels());
  EXPECT_EQ(film.mass_count, 1);
  EXPECT_EQ(film.patient, "mias-001");
}

TEST_F(TinyMias, circles_are_cut_at_the_image_edge) {
  write_info("mdb002 F SPIC M 0 0 2\nmdb002 F MISC B 7 7 1\n");
  add_film("mdb002");
  const RawFilm film = reader()->read_film("mdb002");
  long area = 0;
  for (uint8_t m : film.mask) area += m;
  // Bottom-left corner: the quarter of a radius-2 disc inside (6 pixels); top-right: 3 pixels.
  EXPECT_EQ(area, 6 + 3);
  EXPECT_EQ(film.mass_count, 2);
}

TEST_F(TinyMias, other_abnormalities_and_normal_films_have_empty_masks) {
  write_info("mdb003 D NORM \nmdb004 D CALC M *NOTE 3* \nmdb005 F ASYM B 3 3 2\n");
  for (const char* id : {"mdb003", "mdb004", "mdb005"}) add_film(id);
  const auto films = reader();
  EXPECT_EQ(films->films().train, (std::vector<std::string>{"mdb003", "mdb004", "mdb005"}));
  for (const std::string& id : films->films().train) {
    const RawFilm film = films->read_film(id);
    EXPECT_EQ(film.mass_count, 0);
    EXPECT_EQ(std::count(film.mask.begin(), film.mask.end(), 1), 0) << id;
  }
}

TEST_F(TinyMias, film_keeps_its_drawable_masses_when_one_has_no_coordinates) {
  write_info("mdb007 G CIRC B\nmdb007 G CIRC B 4 4 1\n");
  add_film("mdb007");
  const auto films = reader();
  EXPECT_EQ(films->films().train, (std::vector<std::string>{"mdb007"}));
  EXPECT_EQ(films->films().report.skipped_masses, 1);
  EXPECT_EQ(films->films().report.skipped_films, 0);
  ASSERT_EQ(films->films().report.warnings.size(), 1u);
  EXPECT_EQ(films->films().report.warnings[0],
            "mdb007: mass without coordinates, skipped (" + info_path() + ":1)");
  EXPECT_EQ(films->read_film("mdb007").mass_count, 1);
}

TEST_F(TinyMias, images_are_looked_up_in_images_then_root_then_pgm_originals) {
  write_info("mdb001 G NORM\nmdb002 G NORM\nmdb003 G NORM\n");
  add_film("mdb001", "pgm-originals");
  add_film("mdb002", ".");
  write_text(root() / "pgm-originals" / "mdb002.pgm", "broken");  // the root's copy wins
  add_film("mdb003", "images");
  const auto films = reader();
  for (const char* id : {"mdb001", "mdb002", "mdb003"})
    EXPECT_EQ(films->read_film(id).image.pixels, film_levels()) << id;
}

TEST_F(TinyMias, missing_image_names_the_film_and_the_folders_searched) {
  write_info("mdb010 G NORM\n");
  expect_data_error([&] { reader()->read_film("mdb010"); },
                    {"mdb010: no image file", "mdb010.png", "mdb010.pgm",
                     (root() / "images").string(), (root() / "pgm-originals").string()});
}

TEST_F(TinyMias, truncated_pgm_film_stops_loading_naming_the_file) {
  write_info("mdb001 G NORM\nmdb002 G NORM\n");
  add_film("mdb001");
  std::string truncated = pgm_bytes(8, 8, 255, film_levels());
  truncated.resize(truncated.size() - 10);
  write_text(root() / "mdb002.pgm", truncated);
  hds::config::DataConfig config = mini_mias_config(root());
  config.set_image_rows(8);
  config.set_image_cols(8);
  expect_data_error([&] { load_dataset(config); },
                    {dir_.file("mdb002.pgm") + ": truncated PGM: 54 of 64 pixel bytes"});
}

TEST_F(TinyMias, bad_pgm_magic_names_the_file) {
  write_info("mdb001 G NORM\n");
  write_text(root() / "mdb001.pgm", "P2\n8 8\n255\n");
  expect_data_error([&] { reader()->read_film("mdb001"); },
                    {dir_.file("mdb001.pgm") + ": not a binary PGM"});
}

TEST_F(TinyMias, centre_outside_the_image_names_the_info_line) {
  write_info("mdb001 G CIRC B 3 8 2\n");
  add_film("mdb001");
  expect_data_error([&] { reader()->read_film("mdb001"); },
                    {info_path() + ":1: mdb001: centre (3, 8) lies outside the 8x8 image",
                     dir_.file("mdb001.pgm")});
}

TEST_F(TinyMias, bad_info_rows_name_the_file_and_line) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mdb001 G CIRC B 535 abc 197", "mdb001: y 'abc' is not an integer"},
      {"mdb001 G LUMP B 1 2 3", "class 'LUMP' is not one of"},
      {"mdb001 X NORM", "tissue 'X' is not F, G or D"},
      {"mdb1 G NORM", "film id 'mdb1' is not of the form mdbNNN"},
      {"mdb001 G NORM B", "a NORM row has no severity or coordinates"},
      {"mdb001 G CIRC 1 2 3", "needs a severity B or M"},
      {"mdb001 G CIRC B 1 2", "expected x y radius after the severity, found 2 word(s)"},
      {"mdb001 G CIRC B 1 2 0", "radius must be positive"},
      {"mdb001 G", "expected 'id tissue class"},
  };
  for (const auto& [row, problem] : cases) {
    write_info("Header prose\n\n" + row + "\n");
    expect_data_error([&] { reader(); }, {info_path() + ":3: ", problem});
  }
}

TEST_F(TinyMias, film_listed_as_normal_and_abnormal_is_an_error) {
  write_info("mdb001 G NORM\nmdb001 G CIRC B 1 2 3\n");
  expect_data_error([&] { reader(); }, {info_path() + ":1: mdb001 is listed as NORM"});
}

TEST_F(TinyMias, info_without_rows_or_missing_is_an_error) {
  write_info("just prose\n");
  expect_data_error([&] { reader(); }, {info_path(), "lists no films"});
  fs::remove(root() / "Info.txt");
  expect_data_error([&] { reader(); }, {info_path(), "cannot open"});
}

TEST(MiasPatient, pairs_consecutive_films) {
  EXPECT_EQ(mias_patient("mdb001"), "mias-001");
  EXPECT_EQ(mias_patient("mdb002"), "mias-001");
  EXPECT_EQ(mias_patient("mdb059"), "mias-030");
  EXPECT_EQ(mias_patient("mdb322"), "mias-161");
  expect_data_error([] { mias_patient("x"); }, {"x: not a mini-MIAS film id (mdbNNN)"});
}

}  // namespace
}  // namespace hds::data

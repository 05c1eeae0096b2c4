// The INbreast reader on fixtures the test writes itself: DICOM films through DCMTK and OsiriX
// plist ROIs. Pixels come back exactly (MONOCHROME1 inverted), Mass polygons become the mask, and
// every refusal names the file and the problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "hds/data/dicom.h"
#include "hds/data/film_reader.h"
#include "hds/data/inbreast.h"
#include "hds/test/dicom_files.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

namespace fs = std::filesystem;
using testing::expect_data_error;
using testing::TempDir;
using testing::write_text;

using DicomSpec = hds::test::DicomFixture;
const int kRows = DicomSpec{}.rows;
const int kCols = DicomSpec{}.cols;
const std::string kFileName = "20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm";

std::vector<uint16_t> fourteen_bit_levels() { return hds::test::fourteen_bit_levels(kRows, kCols); }

void write_dicom(const fs::path& path, const DicomSpec& spec) {
  hds::test::write_dicom_fixture(path, spec);
}

// One ROI dict as OsiriX writes it; `stated_points` defaults to the true count.
std::string roi_xml(const std::string& name, const std::vector<std::string>& points,
                    int stated_points = -1) {
  std::string xml = "\t\t\t\t<dict>\n\t\t\t\t\t<key>Area</key>\n\t\t\t\t\t<real>0.0</real>\n";
  xml += "\t\t\t\t\t<key>Name</key>\n\t\t\t\t\t<string>" + name + "</string>\n";
  xml += "\t\t\t\t\t<key>NumberOfPoints</key>\n\t\t\t\t\t<integer>" +
         std::to_string(stated_points < 0 ? static_cast<int>(points.size()) : stated_points) +
         "</integer>\n";
  xml += "\t\t\t\t\t<key>Point_px</key>\n\t\t\t\t\t<array>\n";
  for (const std::string& point : points) xml += "\t\t\t\t\t\t<string>" + point + "</string>\n";
  xml += "\t\t\t\t\t</array>\n\t\t\t\t\t<key>Visible</key>\n\t\t\t\t\t<true/>\n\t\t\t\t</dict>\n";
  return xml;
}

std::string plist_xml(const std::vector<std::string>& rois) {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
      "<plist version=\"1.0\">\n<dict>\n\t<key>Images</key>\n\t<array>\n\t\t<dict>\n"
      "\t\t\t<key>ImageIndex</key>\n\t\t\t<integer>0</integer>\n"
      "\t\t\t<key>NumberOfROIs</key>\n\t\t\t<integer>" +
      std::to_string(rois.size()) + "</integer>\n\t\t\t<key>ROIs</key>\n\t\t\t<array>\n";
  for (const std::string& roi : rois) xml += roi;
  return xml + "\t\t\t</array>\n\t\t</dict>\n\t</array>\n</dict>\n</plist>\n";
}

const std::vector<std::string> kRectangle = {"(10.000000, 20.000000)", "(30.000000, 20.000000)",
                                             "(30.000000, 40.000000)", "(10.000000, 40.000000)"};

class InbreastRoot : public ::testing::Test {
 protected:
  fs::path dicom_path(const std::string& file_name = kFileName) const {
    return dir_.path() / "AllDICOMs" / file_name;
  }
  fs::path xml_path(const std::string& id = "20586908") const {
    return dir_.path() / "AllXML" / (id + ".xml");
  }
  void write_rois(const std::vector<std::string>& rois, const std::string& id = "20586908") {
    write_text(xml_path(id), plist_xml(rois));
  }
  RawFilm read(const std::string& id = "20586908") const { return reader()->read_film(id); }
  std::unique_ptr<FilmReader> reader() const { return make_film_reader(config()); }
  hds::config::DataConfig config() const {
    hds::config::DataConfig config;
    config.set_source("inbreast");
    config.set_folds(0);  // two films cannot fill folds; every film trains
    config.set_use_cache(false);
    config.set_root(dir_.path().string());
    config.set_image_rows(64);
    config.set_image_cols(64);
    return config;
  }
  static long area(const RawFilm& film) {
    return std::count(film.mask.begin(), film.mask.end(), 1);
  }
  static bool at(const RawFilm& film, int row, int col) {
    return film.mask[static_cast<size_t>(row) * film.image.cols + col] != 0;
  }

  TempDir dir_;
};

TEST_F(InbreastRoot, film_id_is_the_file_name_before_the_first_underscore) {
  write_dicom(dicom_path(), {});
  write_dicom(dicom_path("20587054_b6a4f750c6df4f90_MG_R_ML_ANON.dcm"), {});
  write_text(dir_.path() / "AllDICOMs" / "notes.txt", "not a film");
  EXPECT_EQ(reader()->films().train, (std::vector<std::string>{"20586908", "20587054"}));
  EXPECT_EQ(inbreast_film_id(kFileName), "20586908");
  EXPECT_EQ(inbreast_patient_hash(kFileName), "6c613a14b80a8591");
  EXPECT_EQ(inbreast_film_id("plain.dcm"), "plain");
}

TEST_F(InbreastRoot, reads_14_bit_pixels_exactly_with_the_patient_id) {
  write_dicom(dicom_path(), {});
  const RawFilm film = read();
  EXPECT_EQ(film.id, "20586908");
  EXPECT_EQ(film.patient, "patient-7");
  EXPECT_EQ(film.image.rows, kRows);
  EXPECT_EQ(film.image.cols, kCols);
  EXPECT_EQ(film.image.max_level, 16383);
  EXPECT_TRUE(film.image.pixels == fourteen_bit_levels());
}

TEST_F(InbreastRoot, monochrome1_is_inverted_so_that_bright_means_dense) {
  DicomSpec spec;
  spec.photometric = "MONOCHROME1";
  write_dicom(dicom_path(), spec);
  const RawFilm film = read();
  const std::vector<uint16_t> stored = fourteen_bit_levels();
  ASSERT_EQ(film.image.pixels.size(), stored.size());
  for (size_t i = 0; i < stored.size(); ++i)
    ASSERT_EQ(film.image.pixels[i], 16383 - stored[i]) << "pixel " << i;
}

TEST_F(InbreastRoot, bits_above_bits_stored_are_not_part_of_the_value) {
  DicomSpec spec;
  spec.pixels = fourteen_bit_levels();
  spec.pixels[0] = 0xC000 | 5;
  write_dicom(dicom_path(), spec);
  EXPECT_EQ(read().image.pixels[0], 5);
}

TEST_F(InbreastRoot, patient_falls_back_to_the_file_name_hash) {
  DicomSpec spec;
  spec.patient_id = "";
  write_dicom(dicom_path(), spec);
  EXPECT_EQ(read().patient, "6c613a14b80a8591");
}

TEST_F(InbreastRoot, film_without_an_xml_file_has_no_mass) {
  write_dicom(dicom_path(), {});
  const RawFilm film = read();
  EXPECT_EQ(film.mass_count, 0);
  EXPECT_EQ(area(film), 0);
}

TEST_F(InbreastRoot, mass_rectangle_is_filled_and_calcification_is_not_a_mass) {
  write_dicom(dicom_path(), {});
  write_rois({roi_xml("Calcification", {"(45.000000, 5.000000)"}), roi_xml("Mass", kRectangle)});
  const RawFilm film = read();
  EXPECT_EQ(film.mass_count, 1);
  // 20 x 20 px; the outline's pixels may fall either side, within one perimeter (80 px).
  EXPECT_NEAR(area(film), 400, 80);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) {
      const bool strictly_inside = r > 20 && r < 40 && c > 10 && c < 30;
      const bool outside = r < 20 || r > 40 || c < 10 || c > 30;
      if (strictly_inside) {
        EXPECT_TRUE(at(film, r, c)) << r << "," << c;
      } else if (outside) {
        EXPECT_FALSE(at(film, r, c)) << r << "," << c;
      }
    }
  EXPECT_FALSE(at(film, 5, 45));  // the calcification
}

TEST_F(InbreastRoot, mass_triangle_with_fractional_points_is_filled) {
  write_dicom(dicom_path(), {});
  write_rois({roi_xml("mass ", {"(5.5, 5.25)", "(25.5, 5.25)", "(5.5, 25.25)"})});
  const RawFilm film = read();
  EXPECT_EQ(film.mass_count, 1);
  // Legs of 20 px: area 200, perimeter 20 + 20 + 28.3.
  EXPECT_NEAR(area(film), 200, 68.3);
  EXPECT_TRUE(at(film, 10, 10));
  EXPECT_FALSE(at(film, 20, 20));  // beyond the hypotenuse
}

TEST_F(InbreastRoot, dicom_without_pixel_data_names_the_file) {
  DicomSpec spec;
  spec.with_pixel_data = false;
  write_dicom(dicom_path(), spec);
  expect_data_error([&] { read(); }, {dicom_path().string() + ": DICOM without pixel data"});
}

TEST_F(InbreastRoot, file_that_is_not_dicom_names_the_file) {
  write_text(dicom_path(), "this is no DICOM file at all");
  expect_data_error([&] { read(); }, {dicom_path().string() + ": "});
}

TEST_F(InbreastRoot, too_few_pixel_values_name_the_file_and_the_counts) {
  DicomSpec spec;
  spec.pixels = std::vector<uint16_t>(10, 7);
  write_dicom(dicom_path(), spec);
  expect_data_error([&] { read(); }, {dicom_path().string(), "holds 10 values", "needs 3000"});
}

TEST_F(InbreastRoot, roi_point_outside_the_image_names_the_roi_and_the_point) {
  write_dicom(dicom_path(), {});
  write_rois({roi_xml("Calcification", {"(1, 1)"}),
              roi_xml("Mass", {"(10, 20)", "(30, 20)", "(30, 60.5)", "(10, 40)"})});
  expect_data_error([&] { read(); },
                    {xml_path().string() + ": ROI 1 (Mass): point 2 (30, 60.5) lies outside the "
                                           "60x50 image",
                     dicom_path().string()});
}

TEST_F(InbreastRoot, number_of_points_disagreeing_with_point_px_names_file_and_line) {
  write_dicom(dicom_path(), {});
  write_rois({roi_xml("Mass", kRectangle, 5)});
  // The NumberOfPoints value is on line 20 of the written plist.
  expect_data_error([&] { read(); },
                    {xml_path().string() + ":20: ROI 0 (Mass): NumberOfPoints is 5 but Point_px "
                                           "holds 4 point(s)"});
}

TEST_F(InbreastRoot, mass_of_fewer_than_three_points_is_refused) {
  write_dicom(dicom_path(), {});
  write_rois({roi_xml("Mass", {"(10, 20)", "(30, 20)"})});
  expect_data_error([&] { read(); },
                    {xml_path().string() + ": ROI 0 (Mass) has 2 point(s); a mass outline needs "
                                           "at least 3"});
}

TEST_F(InbreastRoot, xml_that_is_not_a_plist_names_the_file) {
  write_dicom(dicom_path(), {});
  write_text(xml_path(), "<?xml version=\"1.0\"?>\n<html><body/></html>\n");
  expect_data_error([&] { read(); },
                    {xml_path().string() + ":2: not a plist: the root element is <html>"});
}

TEST_F(InbreastRoot, load_dataset_preprocesses_the_films) {
  write_dicom(dicom_path(), {});
  write_dicom(dicom_path("20587054_b6a4f750c6df4f90_MG_R_ML_ANON.dcm"), {});
  write_rois({roi_xml("Mass", kRectangle)});
  const Dataset dataset = load_dataset(config());
  ASSERT_EQ(dataset.train.size(), 2u);
  EXPECT_TRUE(dataset.train[0].has_mass());
  EXPECT_EQ(dataset.train[0].mass_count, 1);
  EXPECT_FALSE(dataset.train[1].has_mass());
  EXPECT_EQ(dataset.train[0].rows, 64);
}

TEST_F(InbreastRoot, skip_policy_leaves_out_a_bad_film_and_reports_it) {
  write_dicom(dicom_path(), {});
  DicomSpec empty;
  empty.with_pixel_data = false;
  const fs::path bad = dicom_path("20587054_b6a4f750c6df4f90_MG_R_ML_ANON.dcm");
  write_dicom(bad, empty);
  hds::config::DataConfig skip = config();
  skip.set_on_bad_sample(hds::config::DataConfig::SKIP);
  ::testing::internal::CaptureStderr();
  const Dataset dataset = load_dataset(skip);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(dataset.train.size(), 1u);
  EXPECT_EQ(dataset.train[0].id, "20586908");
  EXPECT_EQ(dataset.report.skipped_films, 1);
  ASSERT_EQ(dataset.report.warnings.size(), 1u);
  EXPECT_NE(dataset.report.warnings[0].find("skipped film 20587054"), std::string::npos);
  EXPECT_NE(dataset.report.warnings[0].find(bad.string() + ": DICOM without pixel data"),
            std::string::npos);
  EXPECT_NE(printed.find(dataset.report.warnings[0]), std::string::npos) << printed;
  expect_data_error([&] { load_dataset(config()); }, {bad.string(), "without pixel data"});
}

TEST_F(InbreastRoot, missing_dicom_folder_is_named) {
  expect_data_error([&] { reader(); }, {(dir_.path() / "AllDICOMs").string(), "not a folder"});
  fs::create_directories(dir_.path() / "AllDICOMs");
  expect_data_error([&] { reader(); }, {"holds no .dcm files"});
}

// ---- the plist subset ---------------------------------------------------------------------------

TEST(OsirixRois, reads_names_and_points_with_entities_and_comments) {
  const std::string xml =
      plist_xml({roi_xml("Spiculated &amp; <!-- note -->Region", {"( 1.5 ,2 )", "(3e0, -0.25)"})});
  const std::vector<OsirixRoi> rois = parse_osirix_rois(xml, "r.xml");
  ASSERT_EQ(rois.size(), 1u);
  EXPECT_EQ(rois[0].name, "Spiculated & Region");
  ASSERT_EQ(rois[0].points.size(), 2u);
  EXPECT_DOUBLE_EQ(rois[0].points[0].x, 1.5);
  EXPECT_DOUBLE_EQ(rois[0].points[0].y, 2);
  EXPECT_DOUBLE_EQ(rois[0].points[1].x, 3);
  EXPECT_DOUBLE_EQ(rois[0].points[1].y, -0.25);
  EXPECT_FALSE(is_inbreast_mass(rois[0]));
}

TEST(OsirixRois, refuses_what_it_does_not_understand_naming_the_line) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<plist><dict><key>Images</key><date>2010</date></dict></plist>",
       "r.xml:1: <date> is not a plist value"},
      {"<plist><dict><key>a</key><true/><key>a</key><true/></dict></plist>",
       "r.xml:1: key 'a' appears twice"},
      {"<plist>\n<dict>\n<key>Images</key>\n<array>", "r.xml:4: the file ends inside <array>"},
      {"<plist><dict><key>Images</key><array/></dict></plist>",
       "r.xml:1: Images is an empty array"},
      {"<plist><dict/></plist>", "r.xml:1: the top dict has no key 'Images'"},
      {"<plist><dict><key>Images</key><array><dict><key>ROIs</key><string/></dict></array>"
       "</dict></plist>",
       "r.xml:1: Images[0]'s ROIs is a string; expected an array"},
      {"<plist><integer>1x</integer></plist>", "'1x' is not a number"},
      {"<plist><string>a &bogus; b</string></plist>", "unknown character reference"},
      {"plain text", "r.xml:1: not a plist: text before the first element"},
  };
  for (const auto& [xml, problem] : cases)
    expect_data_error([&] { parse_osirix_rois(xml, "r.xml"); }, {problem});
}

TEST(OsirixRois, point_that_is_not_x_comma_y_is_named) {
  const std::string xml = plist_xml({roi_xml("Mass", {"(1, 2)", "(1; 2)", "(3, 4)"})});
  expect_data_error([&] { parse_osirix_rois(xml, "r.xml"); },
                    {"r.xml:", "ROI 0 (Mass): Point_px[1] '(1; 2)' is not \"(x, y)\""});
}

}  // namespace
}  // namespace hds::data

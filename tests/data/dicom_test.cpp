// The DICOM grayscale pipeline on fixtures written with DCMTK, against levels worked out by hand
// from PS3.3 C.11 (each case's arithmetic in its comment), the facts read for inference, and the
// refusals that name the file; the Segmentations and structured reports written, checked by the
// independent tools (dciodvfy, dsrdump); and which files of a folder are films.
#include "hds/data/dicom.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <vector>

#include "hds/data/film_file.h"
#include "hds/test/dicom_files.h"
#include "hds/test/files.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

using hds::test::DicomFixture;
using testing::expect_data_error;

// A 1 x n film of the stored `values` (BitsStored 12) with `tags` added.
DicomFilm read_values(const std::string& name, const std::vector<uint16_t>& values,
                      std::function<void(DcmDataset&)> tags,
                      const std::string& photometric = "MONOCHROME2") {
  const std::string path = hds::test::scratch_dir("dicom-" + name) + "/" + name + ".dcm";
  DicomFixture fixture;
  fixture.rows = 1;
  fixture.cols = static_cast<int>(values.size());
  fixture.bits_stored = 12;
  fixture.pixels = values;
  fixture.photometric = photometric;
  fixture.more_tags = std::move(tags);
  hds::test::write_dicom_fixture(path, fixture);
  return read_dicom_film(path);
}

void add_lut(DcmDataset& data, const DcmTagKey& sequence, Uint16 entries, Uint16 first, Uint16 bits,
             const std::vector<Uint16>& table) {
  DcmItem* item = nullptr;
  ASSERT_TRUE(data.findOrCreateSequenceItem(sequence, item, -2).good());
  const Uint16 descriptor[3] = {entries, first, bits};
  item->putAndInsertUint16Array(DCM_LUTDescriptor, descriptor, 3);
  item->putAndInsertUint16Array(DCM_LUTData, table.data(), table.size());
}

TEST(DicomPipeline, rescale_then_exact_window_then_monochrome1_inversion) {
  // Stored s = 1000 - p; modality m = 2s - 100 = 1900 - 2p; LINEAR_EXACT c 1645, w 510:
  // y = ((m - c) / w + 0.5) * 65535 = (1 - p / 255) * 65535; inverted 65535 - y = 257 p.
  const DicomFilm film = read_values(
      "exact", {1000, 999, 900, 745},
      [](DcmDataset& d) {
        d.putAndInsertString(DCM_RescaleSlope, "2");
        d.putAndInsertString(DCM_RescaleIntercept, "-100");
        d.putAndInsertString(DCM_WindowCenter, "1645");
        d.putAndInsertString(DCM_WindowWidth, "510");
        d.putAndInsertString(DCM_VOILUTFunction, "LINEAR_EXACT");
      },
      "MONOCHROME1");
  EXPECT_EQ(film.image.max_level, 65535);
  EXPECT_EQ(film.image.pixels, (std::vector<uint16_t>{0, 257, 25700, 65535}));
  EXPECT_NE(film.pipeline.find("MONOCHROME1 inverted"), std::string::npos) << film.pipeline;
}

TEST(DicomPipeline, linear_window_clips_below_and_above) {
  // LINEAR c 100, w 11: 0 for x <= 94.5, 65535 for x > 104.5, else ((x - 99.5) / 10 + 0.5) * 65535:
  // 95 -> 3276.75, 100 -> 36044.25.
  const DicomFilm film = read_values("linear", {94, 95, 100, 104, 105}, [](DcmDataset& d) {
    d.putAndInsertString(DCM_WindowCenter, "100\\300");  // the first window is used
    d.putAndInsertString(DCM_WindowWidth, "11\\50");
  });
  EXPECT_EQ(film.image.pixels, (std::vector<uint16_t>{0, 3277, 36044, 62258, 65535}));
}

TEST(DicomPipeline, sigmoid_window) {
  // 65535 / (1 + exp(-4 (x - 100) / 40)): 100 -> 32767.5, 110 -> 65535 / (1 + e^-1) = 47909.52.
  const DicomFilm film = read_values("sigmoid", {100, 110}, [](DcmDataset& d) {
    d.putAndInsertString(DCM_WindowCenter, "100");
    d.putAndInsertString(DCM_WindowWidth, "40");
    d.putAndInsertString(DCM_VOILUTFunction, "SIGMOID");
  });
  EXPECT_EQ(film.image.pixels, (std::vector<uint16_t>{32768, 47910}));
}

TEST(DicomPipeline, voi_lut_sequence_maps_onto_its_own_range) {
  // Descriptor 4 entries from input 10, 8 bits: inputs below 10 take the first entry, above 13
  // the last.
  const DicomFilm film = read_values("voi-lut", {5, 10, 11, 12, 13, 20}, [](DcmDataset& d) {
    add_lut(d, DCM_VOILUTSequence, 4, 10, 8, {0, 50, 100, 255});
  });
  EXPECT_EQ(film.image.max_level, 255);
  EXPECT_EQ(film.image.pixels, (std::vector<uint16_t>{0, 0, 50, 100, 255, 255}));
}

TEST(DicomPipeline, without_voi_the_stored_range_stays_turned_around_by_a_falling_modality_lut) {
  const DicomFilm plain = read_values("plain", {0, 7, 4095}, nullptr);
  EXPECT_EQ(plain.image.max_level, 4095);
  EXPECT_EQ(plain.image.pixels, (std::vector<uint16_t>{0, 7, 4095}));
  const DicomFilm falling = read_values("falling", {0, 7, 4095}, [](DcmDataset& d) {
    add_lut(d, DCM_ModalityLUTSequence, 3, 0, 12, {4095, 2000, 0});
  });
  EXPECT_EQ(falling.image.pixels, (std::vector<uint16_t>{4095, 4088, 0}));
}

TEST(DicomPipeline, reads_spacing_laterality_view_and_identifiers) {
  const DicomFilm imager = read_values("imager", {1}, [](DcmDataset& d) {
    d.putAndInsertString(DCM_ImagerPixelSpacing, "0.1\\0.2");
    d.putAndInsertString(DCM_Laterality, "R");
    d.putAndInsertString(DCM_ViewPosition, "MLO");
  });
  EXPECT_DOUBLE_EQ(imager.row_spacing_mm, 0.1);
  EXPECT_DOUBLE_EQ(imager.col_spacing_mm, 0.2);
  EXPECT_EQ(imager.spacing_tag, "ImagerPixelSpacing");
  EXPECT_EQ(imager.laterality, "R");
  EXPECT_EQ(imager.view, "MLO");
  EXPECT_FALSE(imager.study_uid.empty());
  EXPECT_FALSE(imager.sop_instance_uid.empty());
  const DicomFilm both = read_values("both", {1}, [](DcmDataset& d) {
    d.putAndInsertString(DCM_ImagerPixelSpacing, "0.1\\0.2");
    d.putAndInsertString(DCM_PixelSpacing, "0.07\\0.07");
    d.putAndInsertString(DCM_ImageLaterality, "L");
    d.putAndInsertString(DCM_Laterality, "R");
  });
  EXPECT_DOUBLE_EQ(both.row_spacing_mm, 0.07);
  EXPECT_EQ(both.spacing_tag, "PixelSpacing");
  EXPECT_EQ(both.laterality, "L");
  const DicomFilm none = read_values("none", {1}, nullptr);
  EXPECT_EQ(none.row_spacing_mm, 0);
  EXPECT_EQ(none.spacing_tag, "");
}

TEST(DicomPipeline, malformed_windows_and_luts_are_named) {
  const std::string dir = hds::test::scratch_dir("dicom-bad");
  auto write = [&](const std::string& name, std::function<void(DcmDataset&)> tags) {
    DicomFixture fixture;
    fixture.more_tags = std::move(tags);
    hds::test::write_dicom_fixture(dir + "/" + name, fixture);
    return dir + "/" + name;
  };
  const std::string narrow = write("narrow.dcm", [](DcmDataset& d) {
    d.putAndInsertString(DCM_WindowCenter, "100");
    d.putAndInsertString(DCM_WindowWidth, "0");
  });
  expect_data_error([&] { read_dicom_film(narrow); }, {narrow, "Window Width is 0"});
  const std::string function = write("function.dcm", [](DcmDataset& d) {
    d.putAndInsertString(DCM_WindowCenter, "100");
    d.putAndInsertString(DCM_WindowWidth, "10");
    d.putAndInsertString(DCM_VOILUTFunction, "CUBIC");
  });
  expect_data_error([&] { read_dicom_film(function); }, {function, "CUBIC"});
  const std::string short_lut = write("short-lut.dcm", [](DcmDataset& d) {
    add_lut(d, DCM_VOILUTSequence, 8, 0, 8, {0, 1, 2});
  });
  expect_data_error([&] { read_dicom_film(short_lut); },
                    {short_lut, "VOI LUT Sequence", "holds 3 entries"});
}

// DCMTK reads "NaN" and "inf" in decimal strings; such a window rendered the film black and it was
// scored. Every decimal the pipeline uses is refused by name unless finite.
TEST(DicomPipeline, a_value_that_is_not_a_finite_number_is_refused_naming_the_attribute) {
  const std::string dir = hds::test::scratch_dir("dicom-not-finite");
  struct Case {
    std::string name;
    DcmTagKey tag;
    std::string value, message;
  };
  const std::vector<Case> cases = {
      {"centre.dcm", DCM_WindowCenter, "NaN", "WindowCenter (0028,1050) value 1 is nan"},
      {"width.dcm", DCM_WindowWidth, "inf", "WindowWidth (0028,1051) value 1 is inf"},
      {"slope.dcm", DCM_RescaleSlope, "-inf", "RescaleSlope (0028,1053) value 1 is -inf"},
      {"spacing.dcm", DCM_PixelSpacing, "0.07\\NaN", "PixelSpacing (0028,0030) value 2 is nan"},
  };
  for (const Case& c : cases) {
    DicomFixture fixture;
    fixture.more_tags = [&](DcmDataset& d) {
      d.putAndInsertString(DCM_WindowCenter, "100");
      d.putAndInsertString(DCM_WindowWidth, "50");
      d.putAndInsertString(c.tag, c.value.c_str());
    };
    const std::string path = dir + "/" + c.name;
    hds::test::write_dicom_fixture(path, fixture);
    expect_data_error([&] { read_dicom_film(path); }, {path, c.message, "must be a finite number"});
  }
}

// Films shaped like INbreast's (Pixel Spacing, no Patient Orientation) and like a modern
// full-field one (Patient Orientation, Image Laterality, View Position, Imager Pixel Spacing).
struct ValidatedFilm {
  std::string name;
  double spacing_mm;
  std::function<void(DcmDataset&)> tags;
};
const std::vector<ValidatedFilm>& validated_films() {
  static const std::vector<ValidatedFilm> films = {
      {"inbreast", 0.07,
       [](DcmDataset& d) { d.putAndInsertString(DCM_PixelSpacing, "0.07\\0.07"); }},
      {"ffdm", 0.085, [](DcmDataset& d) {
         d.putAndInsertString(DCM_PatientOrientation, "A\\R");
         d.putAndInsertString(DCM_ImagerPixelSpacing, "0.085\\0.085");
         d.putAndInsertString(DCM_ImageLaterality, "L");
         d.putAndInsertString(DCM_ViewPosition, "MLO");
         d.putAndInsertString(DCM_PatientName, "Doe^Jane");
         d.putAndInsertString(DCM_WindowCenter, "2047");
         d.putAndInsertString(DCM_WindowWidth, "4096");
       }}};
  return films;
}

// Writes the film `film` under `dir` and a Segmentation of a 10 x 15 block at rows 20-29,
// columns 10-24 on it; returns the paths (film, segmentation) and the Segmentation's identity.
struct WrittenSegmentation {
  std::string film, path;
  DicomInstance instance;
};
WrittenSegmentation write_film_and_segmentation(const std::string& dir, const ValidatedFilm& film) {
  DicomFixture fixture;
  fixture.more_tags = film.tags;
  WrittenSegmentation written;
  written.film = dir + "/" + film.name + ".dcm";
  hds::test::write_dicom_fixture(written.film, fixture);
  std::vector<uint8_t> mask(static_cast<size_t>(fixture.rows) * fixture.cols, 0);
  for (int r = 20; r < 30; ++r)
    for (int c = 10; c < 25; ++c) mask[static_cast<size_t>(r) * fixture.cols + c] = 1;
  written.path = dir + "/" + film.name + ".seg.dcm";
  written.instance = write_mass_segmentation(written.film, mask, fixture.rows, fixture.cols,
                                             "HDS U-ResNet", written.path);
  return written;
}

// Every Segmentation written passes dciodvfy (Debian's dicom3tools) without errors, and says
// which instance it wrote.
TEST(DicomSegmentation, what_infer_writes_passes_dciodvfy_without_errors) {
  const std::string dciodvfy = hds::test::find_program("dciodvfy");
  if (dciodvfy.empty()) GTEST_SKIP() << "dciodvfy (Debian package dicom3tools) not installed";
  const std::string dir = hds::test::scratch_dir("dicom-seg-dciodvfy");
  for (const ValidatedFilm& film : validated_films()) {
    const WrittenSegmentation seg = write_film_and_segmentation(dir, film);
    hds::test::expect_dciodvfy_clean(dciodvfy, seg.path, "Segmentation");
    DcmFileFormat written;
    ASSERT_TRUE(written.loadFile(seg.path.c_str()).good());
    OFString instance, series;
    written.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, instance);
    written.getDataset()->findAndGetOFString(DCM_SeriesInstanceUID, series);
    EXPECT_EQ(seg.instance.sop_instance_uid, instance.c_str()) << film.name;
    EXPECT_EQ(seg.instance.series_uid, series.c_str()) << film.name;
    EXPECT_EQ(seg.instance.sop_class_uid, UID_SegmentationStorage);
  }
}

// The structured report of a film: dciodvfy finds no error in it, and DCMTK's dsrdump reads back
// the figures given (sizes in mm from the film's spacing, worked out here by hand), the film and
// the Segmentation it references, each lesion's geometry on the film.
TEST(DicomStructuredReport, passes_dciodvfy_and_reads_back_with_dsrdump) {
  const std::string dciodvfy = hds::test::find_program("dciodvfy");
  const std::string dsrdump = hds::test::find_program("dsrdump");
  if (dciodvfy.empty() || dsrdump.empty())
    GTEST_SKIP() << "dciodvfy (dicom3tools) or dsrdump (dcmtk) not installed";
  const std::string dir = hds::test::scratch_dir("dicom-sr");
  for (const ValidatedFilm& film : validated_films()) {
    const WrittenSegmentation seg = write_film_and_segmentation(dir, film);
    MassFindings findings;
    findings.algorithm = "HDS U-ResNet";
    findings.algorithm_version = "step 120";
    findings.mass_probability = 0.8125;
    findings.row_spacing_mm = film.spacing_mm;
    findings.col_spacing_mm = film.spacing_mm;
    MassFindings::Lesion block;  // the Segmentation's 10 x 15 block
    block.top = 20, block.left = 10, block.bottom = 29, block.right = 24;
    block.area_pixels = 150;
    block.centre_x = 17.5, block.centre_y = 25;
    block.diameter_x0 = 10, block.diameter_y0 = 20, block.diameter_x1 = 25, block.diameter_y1 = 30;
    block.longest_diameter = std::hypot(15.0, 10.0) * film.spacing_mm;
    block.peak_probability = 0.96875;
    findings.lesions = {block};
    const std::string sr = dir + "/" + film.name + ".sr.dcm";
    write_mass_report(seg.film, seg.instance, findings, sr);
    hds::test::expect_dciodvfy_clean(dciodvfy, sr, "ComprehensiveSR");
    // A film without lesions: the film's group alone.
    MassFindings clear = findings;
    clear.lesions.clear();
    const std::string clear_sr = dir + "/" + film.name + ".clear.sr.dcm";
    write_mass_report(seg.film, seg.instance, clear, clear_sr);
    hds::test::expect_dciodvfy_clean(dciodvfy, clear_sr, "ComprehensiveSR");
    EXPECT_EQ(hds::test::output_of(dsrdump + " +Pc '" + clear_sr + "'").find("lesion 1"),
              std::string::npos);

    const std::string dump = hds::test::output_of(dsrdump + " +Pc +Pl +Pu '" + sr + "'");
    DcmFileFormat source;
    ASSERT_TRUE(source.loadFile(seg.film.c_str()).good());
    OFString film_instance;
    source.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, film_instance);
    const double mm = film.spacing_mm;
    char area[64], width[64], height[64], diameter[64];
    std::snprintf(area, sizeof area, "=\"%.9g\" (mm2,UCUM,\"mm2\")", 150 * mm * mm);
    std::snprintf(width, sizeof width, "=\"%.9g\" (mm,UCUM", 15 * mm);
    std::snprintf(height, sizeof height, "=\"%.9g\" (mm,UCUM", 10 * mm);
    std::snprintf(diameter, sizeof diameter, "=\"%.9g\" (mm,UCUM", std::hypot(15.0, 10.0) * mm);
    for (const std::string& expected : std::vector<std::string>{
             "Comprehensive SR Document", "CONTAINER:(126000,DCM,\"Imaging Measurement Report\")",
             "(121071,DCM,\"Finding\")=(4147007,SCT,\"Mass\")",
             "(122157,DCM,\"Probability\")=\"0.8125\"", "(122157,DCM,\"Probability\")=\"0.96875\"",
             "(112039,DCM,\"Tracking Identifier\")=\"lesion 1\"",
             std::string("(42798000,SCT,\"Area\")") + area,
             std::string("(103355008,SCT,\"Width\")") + width,
             std::string("(121207,DCM,\"Height\")") + height,
             std::string("(103339001,SCT,\"Long Axis\")") + diameter,
             "(111010,DCM,\"Center\")=(POINT,17.5/25)", "(POLYLINE,10/20,25/20,25/30,10/30,10/20)",
             "(POLYLINE,10/20,25/30)",
             "(121214,DCM,\"Referenced Segmentation Frame\")=(SG image,\"" +
                 seg.instance.sop_instance_uid + "\",1)",
             std::string("(121233,DCM,\"Source image for segmentation\")=(DXm image,\"") +
                 film_instance.c_str() + "\")"}) {
      EXPECT_NE(dump.find(expected), std::string::npos)
          << film.name << ": dsrdump shows no " << expected << "\n"
          << dump;
    }
  }
}

TEST(DicomStructuredReport, a_film_without_its_identifiers_is_refused_naming_it) {
  const std::string dir = hds::test::scratch_dir("dicom-sr-refused");
  DicomFixture fixture;
  fixture.more_tags = [](DcmDataset& d) { d.findAndDeleteElement(DCM_SeriesInstanceUID); };
  const std::string film = dir + "/anonymous.dcm";
  hds::test::write_dicom_fixture(film, fixture);
  const std::string sr = dir + "/anonymous.sr.dcm";
  expect_data_error([&] { write_mass_report(film, DicomInstance{}, MassFindings{}, sr); },
                    {film, "must reference the film's study, series and instance"});
  EXPECT_FALSE(std::filesystem::exists(sr));
}

// What a folder may hold beside films, classified by content without failing.
TEST(FilmCandidates, mammograms_are_films_and_other_files_are_skipped_with_the_reason) {
  const std::string dir = hds::test::scratch_dir("film-candidates");
  const auto write = [&](const std::string& name, std::function<void(DcmDataset&)> tags) {
    DicomFixture fixture;
    fixture.more_tags = std::move(tags);
    hds::test::write_dicom_fixture(dir + "/" + name, fixture);
    return dir + "/" + name;
  };
  EXPECT_TRUE(classify_film_candidate(write("mg.dcm", nullptr)).is_film);
  // DICOM is known by its preamble, whatever the name.
  EXPECT_TRUE(classify_film_candidate(write("IM0001", nullptr)).is_film);
  EXPECT_TRUE(classify_film_candidate(write("dx-breast.dcm", [](DcmDataset& d) {
                d.putAndInsertString(DCM_Modality, "DX");
                d.putAndInsertString(DCM_BodyPartExamined, "BREAST");
              })).is_film);
  const FilmCandidate chest = classify_film_candidate(write("dx-chest.dcm", [](DcmDataset& d) {
    d.putAndInsertString(DCM_Modality, "DX");
    d.putAndInsertString(DCM_BodyPartExamined, "CHEST");
  }));
  EXPECT_FALSE(chest.is_film);
  EXPECT_NE(chest.skip_reason.find("modality DX, not a mammogram"), std::string::npos);
  DicomFixture no_pixels;
  no_pixels.with_pixel_data = false;
  hds::test::write_dicom_fixture(dir + "/header-only.dcm", no_pixels);
  const FilmCandidate header = classify_film_candidate(dir + "/header-only.dcm");
  EXPECT_FALSE(header.is_film);
  EXPECT_NE(header.skip_reason.find("DICOM without pixel data"), std::string::npos);
  hds::test::write_text(dir + "/README", "not a film");
  EXPECT_FALSE(classify_film_candidate(dir + "/README").is_film);
  EXPECT_TRUE(classify_film_candidate(dir + "/film.PNG").is_film);  // by name: read decides
  hds::test::write_text(dir + "/broken.dcm", "garbage");
  EXPECT_TRUE(classify_film_candidate(dir + "/broken.dcm").is_film);  // fails by name when read
}

}  // namespace
}  // namespace hds::data

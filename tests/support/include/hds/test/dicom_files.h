// DICOM films the tests write themselves with DCMTK (a test that includes this links
// DCMTK::dcmdata): a small uncompressed 16-bit mammogram like INbreast's, with study, series and
// instance identifiers, and a hook for further tags (windows, spacing, LUT sequences, ...); and
// what the independent DICOM tools (dicom3tools' dciodvfy, DCMTK's dsrdump) say of a file.
#pragma once

#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace hds::test {

struct DicomFixture {
  int rows = 60;
  int cols = 50;
  int bits_stored = 14;
  std::string photometric = "MONOCHROME2";
  std::string patient_id = "patient-7";
  std::vector<uint16_t> pixels;  // rows x cols stored values; empty: every value i * 331 mod 2^14
  bool with_pixel_data = true;
  std::function<void(DcmDataset&)> more_tags;  // called last, before saving
};

// The default pixels: levels 0..16383 spread over the film, the brightest included.
inline std::vector<uint16_t> fourteen_bit_levels(int rows, int cols) {
  std::vector<uint16_t> levels(static_cast<size_t>(rows) * cols);
  for (size_t i = 0; i < levels.size(); ++i) levels[i] = static_cast<uint16_t>((i * 331) % 16384);
  levels.back() = 16383;
  return levels;
}

// Writes `fixture` to `path` (folders created), explicit little endian. Fails the test when
// DCMTK cannot save it.
inline void write_dicom_fixture(const std::filesystem::path& path, DicomFixture fixture) {
  if (fixture.pixels.empty()) fixture.pixels = fourteen_bit_levels(fixture.rows, fixture.cols);
  DcmFileFormat file;
  DcmDataset& data = *file.getDataset();
  char uid[100];
  data.putAndInsertString(DCM_SOPClassUID, UID_DigitalMammographyXRayImageStorageForPresentation);
  data.putAndInsertString(DCM_SOPInstanceUID,
                          dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  data.putAndInsertString(DCM_StudyInstanceUID,
                          dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
  data.putAndInsertString(DCM_SeriesInstanceUID,
                          dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  data.putAndInsertString(DCM_Modality, "MG");
  if (!fixture.patient_id.empty())
    data.putAndInsertString(DCM_PatientID, fixture.patient_id.c_str());
  data.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(fixture.rows));
  data.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(fixture.cols));
  data.putAndInsertUint16(DCM_BitsAllocated, 16);
  data.putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(fixture.bits_stored));
  data.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(fixture.bits_stored - 1));
  data.putAndInsertUint16(DCM_PixelRepresentation, 0);
  data.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  data.putAndInsertString(DCM_PhotometricInterpretation, fixture.photometric.c_str());
  if (fixture.with_pixel_data)
    data.putAndInsertUint16Array(DCM_PixelData, fixture.pixels.data(), fixture.pixels.size());
  if (fixture.more_tags) fixture.more_tags(data);
  std::filesystem::create_directories(path.parent_path());
  const OFCondition saved = file.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  ASSERT_TRUE(saved.good()) << path << ": " << saved.text();
}

// The output of `command`, stdout and stderr together.
inline std::string output_of(const std::string& command) {
  std::string text;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char chunk[4096];
  size_t n = 0;
  while (pipe != nullptr && (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0)
    text.append(chunk, n);
  if (pipe != nullptr) pclose(pipe);
  return text;
}

// Fails the test unless `dciodvfy` checked `path` as an `iod` (the IOD name it prints, e.g.
// "Segmentation") and printed no line starting "Error".
inline void expect_dciodvfy_clean(const std::string& dciodvfy, const std::string& path,
                                  const std::string& iod) {
  const std::string said = output_of(dciodvfy + " '" + path + "'");
  std::istringstream lines(said);
  bool checked = false;
  for (std::string line; std::getline(lines, line);) {
    checked = checked || line == iod;
    EXPECT_NE(line.rfind("Error", 0), 0u) << path << ": " << line;
  }
  EXPECT_TRUE(checked) << path << ": not checked as a " << iod << ":\n" << said;
}

}  // namespace hds::test

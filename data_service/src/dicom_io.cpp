// DICOM films through DCMTK (dcmdata only: the pixel values are read as stored, without DCMTK's
// display pipeline, so nothing rescales or windows them behind our back).
#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <cstdint>

#include "hds/data/dataset.h"
#include "hds/data/inbreast.h"

namespace hds::data {
namespace {

// As png_io.cpp: far above any mammogram, small enough that a hostile header cannot make us
// allocate gigabytes.
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

// The header fields of one DICOM file, each failure naming the file and the tag.
class DicomHeader {
 public:
  DicomHeader(DcmDataset& data, const std::string& path) : data_(data), path_(path) {}

  Uint16 required_number(const DcmTagKey& tag, const char* name) const {
    Uint16 value = 0;
    if (data_.findAndGetUint16(tag, value).bad())
      fail(std::string("DICOM has no ") + name + " " + tag.toString().c_str());
    return value;
  }

  Uint16 number_or(const DcmTagKey& tag, Uint16 fallback) const {
    Uint16 value = fallback;
    return data_.findAndGetUint16(tag, value).good() ? value : fallback;
  }

  std::string text_or_empty(const DcmTagKey& tag) const {
    OFString value;
    return data_.findAndGetOFStringArray(tag, value).good() ? std::string(value.c_str()) : "";
  }

  void require(bool condition, const std::string& problem) const {
    if (!condition) fail(problem);
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError(path_ + ": " + problem);
  }

 private:
  DcmDataset& data_;
  const std::string& path_;
};

std::string trimmed(std::string text) {
  text.erase(0, text.find_first_not_of(' '));
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
}

// Checks the layout this reader supports; returns whether values must be inverted (MONOCHROME1).
bool check_layout(const DicomHeader& header, int bits_stored) {
  const Uint16 bits_allocated = header.required_number(DCM_BitsAllocated, "BitsAllocated");
  header.require(bits_allocated == 16, "BitsAllocated is " + std::to_string(bits_allocated) +
                                           "; this reader takes 16-bit pixel data");
  header.require(bits_stored >= 1 && bits_stored <= 16,
                 "BitsStored is " + std::to_string(bits_stored) + "; expected 1..16");
  const Uint16 high_bit = header.number_or(DCM_HighBit, static_cast<Uint16>(bits_stored - 1));
  header.require(high_bit == bits_stored - 1,
                 "HighBit is " + std::to_string(high_bit) + " with BitsStored " +
                     std::to_string(bits_stored) + "; only HighBit = BitsStored - 1 is supported");
  header.require(header.required_number(DCM_PixelRepresentation, "PixelRepresentation") == 0,
                 "PixelRepresentation is signed; this reader takes unsigned pixel values");
  header.require(header.number_or(DCM_SamplesPerPixel, 1) == 1,
                 "SamplesPerPixel is not 1; expected a grey image");
  const std::string frames = trimmed(header.text_or_empty(DCM_NumberOfFrames));
  header.require(frames.empty() || frames == "1",
                 "NumberOfFrames is " + frames + "; expected a single frame");
  const std::string photometric = trimmed(header.text_or_empty(DCM_PhotometricInterpretation));
  header.require(
      photometric == "MONOCHROME1" || photometric == "MONOCHROME2",
      "PhotometricInterpretation is \"" + photometric + "\"; expected MONOCHROME1 or MONOCHROME2");
  return photometric == "MONOCHROME1";
}

}  // namespace

DicomFilm read_dicom_film(const std::string& path) {
  DcmFileFormat file;
  const OFCondition loaded = file.loadFile(path.c_str());
  if (loaded.bad()) throw DataError(path + ": cannot read as DICOM (DCMTK: " + loaded.text() + ")");
  DcmDataset& data = *file.getDataset();
  const DicomHeader header(data, path);

  const DcmXfer transfer_syntax(data.getOriginalXfer());
  header.require(!transfer_syntax.isEncapsulated(),
                 std::string("compressed pixel data (") + transfer_syntax.getXferName() +
                     "); this reader takes uncompressed DICOM, as INbreast ships");
  header.require(data.tagExistsWithValue(DCM_PixelData),
                 "DICOM without pixel data (no PixelData element (7fe0,0010))");
  const int rows = header.required_number(DCM_Rows, "Rows");
  const int cols = header.required_number(DCM_Columns, "Columns");
  header.require(rows > 0 && cols > 0, "Rows x Columns is " + std::to_string(rows) + "x" +
                                           std::to_string(cols) + "; both must be positive");
  header.require(static_cast<uint64_t>(rows) * cols <= kMaxPixels,
                 "the image is larger than this reader accepts");
  const int bits_stored = header.required_number(DCM_BitsStored, "BitsStored");
  const bool invert = check_layout(header, bits_stored);

  const Uint16* values = nullptr;
  unsigned long count = 0;
  header.require(data.findAndGetUint16Array(DCM_PixelData, values, &count).good() && values,
                 "the pixel data cannot be read as 16-bit values");
  const size_t pixels = static_cast<size_t>(rows) * cols;
  header.require(count >= pixels, "the pixel data holds " + std::to_string(count) +
                                      " values; Rows x Columns (" + std::to_string(rows) + "x" +
                                      std::to_string(cols) + ") needs " + std::to_string(pixels));

  DicomFilm film;
  film.patient_id = trimmed(header.text_or_empty(DCM_PatientID));
  film.image.rows = rows;
  film.image.cols = cols;
  const auto max_level = static_cast<uint16_t>((1u << bits_stored) - 1);
  film.image.max_level = max_level;
  film.image.pixels.resize(pixels);
  for (size_t i = 0; i < pixels; ++i) {
    const auto value = static_cast<uint16_t>(values[i] & max_level);  // bits above BitsStored
    film.image.pixels[i] = invert ? static_cast<uint16_t>(max_level - value) : value;
  }
  return film;
}

}  // namespace hds::data

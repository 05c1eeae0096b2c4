// DICOM films through DCMTK (dcmdata only: the stored values are read and the grayscale pipeline
// is ours, written out below, so that what a film becomes does not depend on DCMTK's display
// code).
#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dctag.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "hds/data/dataset.h"
#include "hds/data/dicom.h"

namespace hds::data {
namespace {

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

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

  // Value `index` of a decimal-string tag (DS), or nothing when absent or empty. A value that is
  // not a finite number (DCMTK reads "NaN" and "inf") would flow silently into the pixels or the
  // areas: refused, naming the attribute.
  bool decimal(const DcmTagKey& tag, unsigned long index, double& value) const {
    Float64 number = 0;
    if (data_.findAndGetFloat64(tag, number, index).bad()) return false;
    if (!std::isfinite(number)) {
      fail(std::string(DcmTag(tag).getTagName()) + " " + tag.toString().c_str() + " value " +
           std::to_string(index + 1) + " is " + number_text(number) + "; must be a finite number");
    }
    value = number;
    return true;
  }

  DcmDataset& data() const { return data_; }

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

// A lookup table of the Modality or VOI LUT Sequence: LUT Descriptor (entries, 0 meaning 65536;
// the first input value mapped; bits per entry) and LUT Data.
struct Lut {
  int first_input = 0;
  int bits = 16;
  std::vector<uint16_t> data;

  double at(double input) const {
    const double index =
        std::clamp(std::floor(input) - first_input, 0.0, static_cast<double>(data.size() - 1));
    return data[static_cast<size_t>(index)];
  }
};

// The first item of `sequence` as a Lut; false when the sequence is absent or empty.
bool read_lut(const DicomHeader& header, const DcmTagKey& sequence, const char* name, Lut& lut) {
  DcmItem* item = nullptr;
  if (header.data().findAndGetSequenceItem(sequence, item, 0).bad() || item == nullptr)
    return false;
  const std::string where = std::string(name) + " ";
  DcmElement* descriptor = nullptr;
  header.require(
      item->findAndGetElement(DCM_LUTDescriptor, descriptor).good() && descriptor->getVM() == 3,
      where + "has no LUT Descriptor (0028,3002) of 3 values");
  Uint16 entries = 0, first = 0, bits = 0;
  descriptor->getUint16(entries, 0);
  descriptor->getUint16(first, 1);
  descriptor->getUint16(bits, 2);
  // The first input value is signed when the input may be (US or SS); a stored value here is
  // unsigned, but a Modality LUT output may be negative.
  lut.first_input = descriptor->getVR() == EVR_SS ? static_cast<Sint16>(first) : first;
  lut.bits = bits;
  header.require(bits >= 1 && bits <= 16, where + "LUT Descriptor gives " + std::to_string(bits) +
                                              " bits per entry; expected 1..16");
  const size_t count = entries == 0 ? 65536 : entries;
  const Uint16* values = nullptr;
  unsigned long found = 0;
  header.require(item->findAndGetUint16Array(DCM_LUTData, values, &found).good() && values,
                 where + "has no LUT Data (0028,3006)");
  header.require(found >= count, where + "LUT Data holds " + std::to_string(found) +
                                     " entries; its descriptor says " + std::to_string(count));
  lut.data.assign(values, values + count);
  return true;
}

// PS3.3 C.11.2.1.2: the window's output on [0, y_max].
double apply_window(double x, double centre, double width, const std::string& function,
                    double y_max) {
  if (function == "SIGMOID") return y_max / (1 + std::exp(-4 * (x - centre) / width));
  if (function == "LINEAR_EXACT") {
    if (x <= centre - width / 2) return 0;
    if (x > centre + width / 2) return y_max;
    return ((x - centre) / width + 0.5) * y_max;
  }
  if (x <= centre - 0.5 - (width - 1) / 2) return 0;
  if (x > centre - 0.5 + (width - 1) / 2) return y_max;
  return ((x - (centre - 0.5)) / (width - 1) + 0.5) * y_max;
}

// Maps `stored` (cleared above BitsStored) through the modality and VOI steps into `film`.
void apply_pipeline(const DicomHeader& header, const std::vector<uint16_t>& stored, int bits_stored,
                    DicomFilm& film) {
  constexpr double kWindowLevels = 65535;
  const double stored_max = (1u << bits_stored) - 1;
  Lut modality_lut;
  const bool has_modality_lut =
      read_lut(header, DCM_ModalityLUTSequence, "Modality LUT Sequence", modality_lut);
  double slope = 1, intercept = 0;
  if (!has_modality_lut) {
    header.decimal(DCM_RescaleSlope, 0, slope);
    header.decimal(DCM_RescaleIntercept, 0, intercept);
    header.require(std::isfinite(slope) && slope != 0 && std::isfinite(intercept),
                   "Rescale Slope " + number_text(slope) + " / Intercept " +
                       number_text(intercept) + ": the slope must be a nonzero number");
  }
  auto modality = [&](double v) {
    return has_modality_lut ? modality_lut.at(v) : slope * v + intercept;
  };
  film.pipeline = has_modality_lut
                      ? "modality LUT"
                      : "rescale " + number_text(slope) + " * v + " + number_text(intercept);

  double centre = 0, width = 0;
  Lut voi_lut;
  std::vector<double> levels(stored.size());
  if (header.decimal(DCM_WindowCenter, 0, centre) && header.decimal(DCM_WindowWidth, 0, width)) {
    std::string function = header.text_or_empty(DCM_VOILUTFunction);
    function.erase(std::remove(function.begin(), function.end(), ' '), function.end());
    if (function.empty()) function = "LINEAR";
    header.require(
        function == "LINEAR" || function == "LINEAR_EXACT" || function == "SIGMOID",
        "VOI LUT Function is \"" + function + "\"; expected LINEAR, LINEAR_EXACT or SIGMOID");
    header.require(function == "LINEAR" ? width >= 1 : width > 0,
                   "Window Width is " + number_text(width) +
                       (function == "LINEAR" ? "; must be at least 1" : "; must be positive"));
    for (size_t i = 0; i < stored.size(); ++i)
      levels[i] = apply_window(modality(stored[i]), centre, width, function, kWindowLevels);
    film.image.max_level = static_cast<uint16_t>(kWindowLevels);
    film.pipeline +=
        ", window " + number_text(centre) + "/" + number_text(width) + " (" + function + ")";
  } else if (read_lut(header, DCM_VOILUTSequence, "VOI LUT Sequence", voi_lut)) {
    for (size_t i = 0; i < stored.size(); ++i) levels[i] = voi_lut.at(modality(stored[i]));
    film.image.max_level = static_cast<uint16_t>((1u << voi_lut.bits) - 1);
    film.pipeline += ", VOI LUT";
  } else {
    // No VOI: the stored range as it is; a decreasing modality mapping turns it around.
    const bool decreasing = modality(stored_max) < modality(0);
    for (size_t i = 0; i < stored.size(); ++i)
      levels[i] = decreasing ? stored_max - stored[i] : stored[i];
    film.image.max_level = static_cast<uint16_t>(stored_max);
    film.pipeline += ", no VOI";
  }
  film.image.pixels.resize(stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    film.image.pixels[i] = static_cast<uint16_t>(
        std::lround(std::clamp(levels[i], 0.0, static_cast<double>(film.image.max_level))));
  }
}

// Spacing, laterality, view, the study's and the instance's identifiers.
void read_facts(const DicomHeader& header, DicomFilm& film) {
  for (const auto& [tag, name] : {std::pair{DCM_PixelSpacing, "PixelSpacing"},
                                  std::pair{DCM_ImagerPixelSpacing, "ImagerPixelSpacing"}}) {
    double row = 0, col = 0;
    if (header.decimal(tag, 0, row) && header.decimal(tag, 1, col) && row > 0 && col > 0) {
      film.row_spacing_mm = row;
      film.col_spacing_mm = col;
      film.spacing_tag = name;
      break;
    }
  }
  film.laterality = trimmed(header.text_or_empty(DCM_ImageLaterality));
  if (film.laterality.empty()) film.laterality = trimmed(header.text_or_empty(DCM_Laterality));
  film.view = trimmed(header.text_or_empty(DCM_ViewPosition));
  film.study_uid = trimmed(header.text_or_empty(DCM_StudyInstanceUID));
  film.study_date = trimmed(header.text_or_empty(DCM_StudyDate));
  film.accession_number = trimmed(header.text_or_empty(DCM_AccessionNumber));
  film.series_uid = trimmed(header.text_or_empty(DCM_SeriesInstanceUID));
  film.sop_instance_uid = trimmed(header.text_or_empty(DCM_SOPInstanceUID));
  film.sop_class_uid = trimmed(header.text_or_empty(DCM_SOPClassUID));
}

}  // namespace

DicomFilm read_dicom_film(const std::string& path, uint64_t max_pixels) {
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
  check_film_pixels(path, "DICOM", static_cast<uint64_t>(rows), static_cast<uint64_t>(cols),
                    max_pixels);
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
  const auto mask = static_cast<uint16_t>((1u << bits_stored) - 1);
  std::vector<uint16_t> stored(pixels);
  for (size_t i = 0; i < pixels; ++i) stored[i] = values[i] & mask;  // bits above BitsStored
  apply_pipeline(header, stored, bits_stored, film);
  if (invert) {
    for (uint16_t& level : film.image.pixels)
      level = static_cast<uint16_t>(film.image.max_level - level);
    film.pipeline += ", MONOCHROME1 inverted";
  }
  read_facts(header, film);
  return film;
}

}  // namespace hds::data

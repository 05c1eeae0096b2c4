// What hds_data's users of DCMTK share: attribute values, the source film the writers
// (dicom_seg.cpp, dicom_sr.cpp) derive from, and DCMTK's warnings kept quiet. Internal to hds_data.
#pragma once

#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/oflog/oflog.h>

#include <memory>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/dicom.h"

namespace hds::data::dcmtk_support {

// The attribute's (first) value, "" when missing.
inline std::string text_of(DcmItem& data, const DcmTagKey& tag) {
  OFString value;
  return data.findAndGetOFString(tag, value).good() ? std::string(value.c_str()) : "";
}

// Every value of a multi-valued attribute, backslash-separated as stored ("A\\R").
inline std::string text_of_all(DcmItem& data, const DcmTagKey& tag) {
  OFString value;
  return data.findAndGetOFStringArray(tag, value).good() ? std::string(value.c_str()) : "";
}

// The film a written object derives from: its dataset and the identifiers a reference needs.
struct SourceFilm {
  DcmFileFormat file;
  DicomInstance id;
  DcmDataset& data() { return *file.getDataset(); }
};

// Loads `path`. Throws DataError naming it when DCMTK cannot read it or it lacks an identifier
// that `kind` ("a DICOM Segmentation") must reference.
inline std::unique_ptr<SourceFilm> load_source_film(const std::string& path,
                                                    const std::string& kind) {
  auto film = std::make_unique<SourceFilm>();
  // Values longer than 4 KiB (the pixels) stay on disk: the writers need the header alone, and
  // infer has read the pixels already.
  const OFCondition loaded = film->file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 4096);
  if (loaded.bad()) throw DataError(path + ": cannot read as DICOM (DCMTK: " + loaded.text() + ")");
  film->id = {text_of(film->data(), DCM_StudyInstanceUID),
              text_of(film->data(), DCM_SeriesInstanceUID), text_of(film->data(), DCM_SOPClassUID),
              text_of(film->data(), DCM_SOPInstanceUID)};
  if (film->id.study_uid.empty() || film->id.series_uid.empty() || film->id.sop_class_uid.empty() ||
      film->id.sop_instance_uid.empty())
    throw DataError(path + ": " + kind +
                    " must reference the film's study, series and instance, but it lacks "
                    "StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID or SOPClassUID");
  return film;
}

// DCMTK warns on stderr of every Type 2 attribute a source film lacks (patient's birth date, study
// time, ...), which the writers then put empty as the standard allows: a screenful per film in
// `infer`'s output with nothing to act on. Errors still show.
inline void quiet_dcmtk_warnings() {
  static const bool configured = [] {
    OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
    return true;
  }();
  (void)configured;
}

}  // namespace hds::data::dcmtk_support

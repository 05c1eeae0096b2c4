// What the DICOM writers (dicom_seg.cpp, dicom_sr.cpp) share: reading a source film's attributes
// and making new UIDs with DCMTK. Internal to hds_data.
#pragma once

#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <string>

namespace hds::data::dicom_writing {

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

inline std::string new_uid(const char* root) {
  char uid[100];
  return dcmGenerateUniqueIdentifier(uid, root);
}

}  // namespace hds::data::dicom_writing

// The structured report of a film's masses through DCMTK's dcmsr: a Comprehensive SR whose content
// follows TID 1500 (docs/design.md §7 says why that template and not Mammography CAD SR's TID
// 4000).
#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/codes/ucum.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "dcmtk_support.h"
#include "hds/common/read_file.h"
#include "hds/data/dataset.h"
#include "hds/data/dicom.h"

namespace hds::data {

using dcmtk_support::text_of;

namespace {

// Codes of SNOMED CT that DCMTK's code headers do not carry.
const DSRCodedEntryValue kMass("4147007", "SCT", "Mass");
const DSRCodedEntryValue kMammography("71651007", "SCT", "Mammography");
const DSRCodedEntryValue kArea("42798000", "SCT", "Area");
const DSRCodedEntryValue kLongAxis("103339001", "SCT", "Long Axis");
const DSRCodedEntryValue kWidth("103355008", "SCT", "Width");
const DSRCodedEntryValue kNoUnits("1", "UCUM", "no units");
const DSRCodedEntryValue kSquareMillimetre("mm2", "UCUM", "mm2");

// Throws DataError naming `out_path` when `condition` is bad.
void check(const OFCondition& condition, const std::string& out_path, const std::string& step) {
  if (condition.bad())
    throw DataError(out_path + ": cannot write the DICOM Structured Report: " + step +
                    " (DCMTK: " + condition.text() + ")");
}

// A Decimal String value (at most 16 characters).
std::string decimal(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// Builds the content tree at its cursor; every add checks that DCMTK accepted the item under the
// Comprehensive SR's relationship constraints.
class ReportTree {
 public:
  ReportTree(DSRDocumentTree& tree, std::string out_path)
      : tree_(tree), out_path_(std::move(out_path)) {}

  // A new item after the cursor (`below`: as its first child); the cursor moves to it.
  DSRContentItem& add(DSRTypes::E_RelationshipType relation, DSRTypes::E_ValueType type,
                      const DSRCodedEntryValue& concept, bool below = false) {
    const std::string what = concept.getCodeMeaning().c_str();
    if (tree_.addContentItem(relation, type,
                             below ? DSRTypes::AM_belowCurrent : DSRTypes::AM_afterCurrent) == 0)
      throw DataError(out_path_ + ": cannot write the DICOM Structured Report: DCMTK refused '" +
                      (what.empty() ? std::string("an image reference") : what) + "' there");
    if (!concept.isEmpty()) check(item().setConceptName(concept), "the concept " + what);
    return item();
  }
  DSRContentItem& item() { return tree_.getCurrentContentItem(); }
  void up() { tree_.goUp(); }
  void check(const OFCondition& condition, const std::string& step) const {
    hds::data::check(condition, out_path_, step);
  }

  void code(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
            const DSRCodedEntryValue& value, bool below = false) {
    check(add(relation, DSRTypes::VT_Code, concept, below).setCodeValue(value),
          concept.getCodeMeaning().c_str());
  }
  void text(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
            const std::string& value, bool below = false) {
    check(add(relation, DSRTypes::VT_Text, concept, below).setStringValue(value.c_str()),
          concept.getCodeMeaning().c_str());
  }
  void uid(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
           const std::string& value, bool below = false) {
    check(add(relation, DSRTypes::VT_UIDRef, concept, below).setStringValue(value.c_str()),
          concept.getCodeMeaning().c_str());
  }
  void number(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
              double value, const DSRCodedEntryValue& unit, bool below = false) {
    check(add(relation, DSRTypes::VT_Num, concept, below)
              .setNumericValue(DSRNumericMeasurementValue(decimal(value).c_str(), unit)),
          concept.getCodeMeaning().c_str());
  }
  void image(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
             const DSRImageReferenceValue& value, bool below = false) {
    check(add(relation, DSRTypes::VT_Image, concept, below).setImageReference(value),
          "an image reference");
  }
  // A SCOORD of `points` (x, y pairs) SELECTED FROM `film`, below the cursor (which stays) or
  // after it (the cursor moves to the SCOORD).
  void coordinates(DSRTypes::E_RelationshipType relation, const DSRCodedEntryValue& concept,
                   DSRTypes::E_GraphicType shape, const std::vector<double>& points,
                   const DSRImageReferenceValue& film, bool below) {
    DSRSpatialCoordinatesValue value(shape);
    for (size_t i = 0; i + 1 < points.size(); i += 2)
      value.getGraphicDataList().addItem(static_cast<Float32>(points[i]),
                                         static_cast<Float32>(points[i + 1]));
    check(add(relation, DSRTypes::VT_SCoord, concept, below).setSpatialCoordinates(value),
          "spatial coordinates");
    image(DSRTypes::RT_selectedFrom, DSRCodedEntryValue(), film, true);
    up();
    if (below) up();
  }

 private:
  DSRDocumentTree& tree_;
  std::string out_path_;
};

// The measurement group of one lesion (TID 1410), added after the cursor.
void add_lesion(ReportTree& tree, int number, const MassFindings& findings,
                const MassFindings::Lesion& lesion, const DSRImageReferenceValue& film,
                const DicomInstance& segmentation) {
  using T = DSRTypes;
  const bool spaced = findings.spaced();
  const DSRCodedEntryValue length_unit =
      spaced ? DSRCodedEntryValue(CODE_UCUM_Millimeter) : DSRCodedEntryValue(CODE_UCUM_Pixels);
  const DSRCodedEntryValue area_unit = spaced ? kSquareMillimetre : CODE_UCUM_Pixels;
  const double col_mm = spaced ? findings.col_spacing_mm : 1;
  const double row_mm = spaced ? findings.row_spacing_mm : 1;

  tree.add(T::RT_contains, T::VT_Container, CODE_DCM_MeasurementGroup);
  tree.check(tree.item().setTemplateIdentification("1410", "DCMR"), "the template");
  tree.text(T::RT_hasObsContext, CODE_DCM_TrackingIdentifier, "lesion " + std::to_string(number),
            true);
  tree.uid(T::RT_hasObsContext, CODE_DCM_TrackingUniqueIdentifier, new_dicom_uid());
  DSRImageReferenceValue frame(segmentation.sop_class_uid.c_str(),
                               segmentation.sop_instance_uid.c_str());
  frame.getFrameList().addItem(1);  // segment 1's one frame
  tree.image(T::RT_contains, CODE_DCM_ReferencedSegmentationFrame, frame);
  tree.image(T::RT_contains, CODE_DCM_SourceImageForSegmentation, film);
  tree.code(T::RT_hasConceptMod, CODE_DCM_Finding, kMass);
  tree.number(T::RT_contains, kArea, findings.area(lesion), area_unit);
  tree.number(T::RT_contains, kLongAxis, lesion.longest_diameter, length_unit);
  tree.coordinates(T::RT_inferredFrom, DSRCodedEntryValue(), T::GT_Polyline,
                   {lesion.diameter_x0, lesion.diameter_y0, lesion.diameter_x1, lesion.diameter_y1},
                   film, true);
  // The bounding box as a closed polyline around its pixels' outer edges.
  const double x0 = lesion.left, y0 = lesion.top, x1 = lesion.right + 1.0, y1 = lesion.bottom + 1.0;
  const std::vector<double> box = {x0, y0, x1, y0, x1, y1, x0, y1, x0, y0};
  tree.number(T::RT_contains, kWidth, (x1 - x0) * col_mm, length_unit);
  tree.coordinates(T::RT_inferredFrom, DSRCodedEntryValue(), T::GT_Polyline, box, film, true);
  tree.number(T::RT_contains, CODE_DCM_Height, (y1 - y0) * row_mm, length_unit);
  tree.coordinates(T::RT_inferredFrom, DSRCodedEntryValue(), T::GT_Polyline, box, film, true);
  tree.number(T::RT_contains, CODE_DCM_Probability, lesion.peak_probability, kNoUnits);
  tree.coordinates(T::RT_contains, CODE_DCM_Center, T::GT_Point, {lesion.centre_x, lesion.centre_y},
                   film, false);
  tree.up();
}

}  // namespace

void write_mass_report(const std::string& source_path, const DicomInstance& segmentation,
                       const MassFindings& findings, const std::string& out_path) {
  dcmtk_support::quiet_dcmtk_warnings();
  using T = DSRTypes;
  const auto source = dcmtk_support::load_source_film(source_path, "a DICOM Structured Report");
  DcmDataset& film_data = source->data();
  const DicomInstance& film_id = source->id;

  DSRDocument document(DSRTypes::DT_ComprehensiveSR);
  const auto copy = [&](OFCondition (DSRDocument::*set)(const OFString&, const OFBool),
                        const DcmTagKey& tag) {
    const std::string value = text_of(film_data, tag);
    if (!value.empty())
      check((document.*set)(value.c_str(), OFTrue), out_path, tag.toString().c_str());
  };
  const std::string charset = dcmtk_support::text_of_all(film_data, DCM_SpecificCharacterSet);
  if (!charset.empty())
    check(document.setSpecificCharacterSet(charset.c_str()), out_path, "the character set");
  copy(&DSRDocument::setPatientName, DCM_PatientName);
  copy(&DSRDocument::setPatientID, DCM_PatientID);
  copy(&DSRDocument::setIssuerOfPatientID, DCM_IssuerOfPatientID);
  copy(&DSRDocument::setPatientBirthDate, DCM_PatientBirthDate);
  copy(&DSRDocument::setPatientSex, DCM_PatientSex);
  copy(&DSRDocument::setStudyDate, DCM_StudyDate);
  copy(&DSRDocument::setStudyTime, DCM_StudyTime);
  copy(&DSRDocument::setStudyID, DCM_StudyID);
  copy(&DSRDocument::setAccessionNumber, DCM_AccessionNumber);
  copy(&DSRDocument::setReferringPhysicianName, DCM_ReferringPhysicianName);
  copy(&DSRDocument::setStudyDescription, DCM_StudyDescription);
  check(document.createNewSeriesInStudy(film_id.study_uid.c_str()), out_path, "the series");
  check(document.setSeriesNumber("9002"), out_path, "the series number");
  check(document.setSeriesDescription("HDS U-ResNet mass report"), out_path,
        "the series description");
  check(document.setManufacturer("HDS training service"), out_path, "the manufacturer");
  check(document.setSoftwareVersions(findings.algorithm_version.c_str()), out_path,
        "the software version");
  check(document.getCurrentRequestedProcedureEvidence().addItem(
            film_id.study_uid.c_str(), film_id.series_uid.c_str(), film_id.sop_class_uid.c_str(),
            film_id.sop_instance_uid.c_str()),
        out_path, "the film as evidence");
  check(document.getPertinentOtherEvidence().addItem(
            segmentation.study_uid.c_str(), segmentation.series_uid.c_str(),
            segmentation.sop_class_uid.c_str(), segmentation.sop_instance_uid.c_str()),
        out_path,
        "the Segmentation as evidence (study " + segmentation.study_uid + ", series " +
            segmentation.series_uid + ", class " + segmentation.sop_class_uid + ", instance " +
            segmentation.sop_instance_uid + ")");

  ReportTree tree(document.getTree(), out_path);
  const DSRImageReferenceValue film(film_id.sop_class_uid.c_str(),
                                    film_id.sop_instance_uid.c_str());
  tree.add(T::RT_isRoot, T::VT_Container, CODE_DCM_ImagingMeasurementReport);
  tree.check(tree.item().setTemplateIdentification("1500", "DCMR"), "the template");
  tree.code(T::RT_hasConceptMod, CODE_DCM_LanguageOfContentItemAndDescendants,
            DSRCodedEntryValue("en-US", "RFC5646", "English (United States)"), true);
  tree.code(T::RT_hasObsContext, CODE_DCM_ObserverType, CODE_DCM_Device);
  tree.uid(T::RT_hasObsContext, CODE_DCM_DeviceObserverUID,
           findings.device_uid.empty() ? new_dicom_uid() : findings.device_uid);
  tree.text(T::RT_hasObsContext, CODE_DCM_DeviceObserverName, findings.algorithm);
  tree.text(T::RT_hasObsContext, CODE_DCM_DeviceObserverManufacturer, "HDS training service");
  tree.code(T::RT_hasConceptMod, CODE_DCM_ProcedureReported, kMammography);

  tree.add(T::RT_contains, T::VT_Container, CODE_DCM_ImageLibrary);
  tree.add(T::RT_contains, T::VT_Container, CODE_DCM_ImageLibraryGroup, true);
  tree.image(T::RT_contains, DSRCodedEntryValue(), film, true);
  tree.up();
  tree.up();

  tree.add(T::RT_contains, T::VT_Container, CODE_DCM_ImagingMeasurements);
  tree.add(T::RT_contains, T::VT_Container, CODE_DCM_MeasurementGroup, true);
  tree.check(tree.item().setTemplateIdentification("1501", "DCMR"), "the template");
  tree.text(T::RT_hasObsContext, CODE_DCM_TrackingIdentifier, "film", true);
  tree.uid(T::RT_hasObsContext, CODE_DCM_TrackingUniqueIdentifier, new_dicom_uid());
  tree.code(T::RT_hasConceptMod, CODE_DCM_Finding, kMass);
  tree.number(T::RT_contains, CODE_DCM_Probability, findings.mass_probability, kNoUnits);
  tree.text(T::RT_hasConceptMod, CODE_DCM_AlgorithmName, findings.algorithm, true);
  tree.text(T::RT_hasConceptMod, CODE_DCM_AlgorithmVersion, findings.algorithm_version);
  tree.image(T::RT_inferredFrom, CODE_DCM_SourceOfMeasurement, film);
  tree.up();  // to the Probability
  tree.up();  // to the film's group
  for (size_t k = 0; k < findings.lesions.size(); ++k) {
    add_lesion(tree, static_cast<int>(k + 1), findings, findings.lesions[k], film, segmentation);
  }

  check(document.completeDocument(), out_path, "completing it");
  DcmFileFormat file;
  check(document.write(*file.getDataset()), out_path, "encoding it");
  hds::common::replace_file_by(out_path, [&](const std::string& partial) {
    check(file.saveFile(partial.c_str(), EXS_LittleEndianExplicit), out_path, "saving it");
  });
}

}  // namespace hds::data

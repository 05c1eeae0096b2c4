// DICOM Segmentation output through DCMTK's dcmseg (with dcmfg's functional groups and dcmiod's
// modules).
#include <dcmtk/config/osconfig.h>  // must precede every other DCMTK header
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <memory>

#include "dcmtk_support.h"
#include "hds/common/read_file.h"
#include "hds/data/dataset.h"
#include "hds/data/dicom.h"

namespace hds::data {

using dcmtk_support::text_of;
using dcmtk_support::text_of_all;

namespace {

// Throws DataError naming `out_path` when `condition` is bad.
void check(const OFCondition& condition, const std::string& out_path, const std::string& step) {
  if (condition.bad())
    throw DataError(out_path + ": cannot write the DICOM Segmentation: " + step +
                    " (DCMTK: " + condition.text() + ")");
}

}  // namespace

std::string new_dicom_uid() {
  char uid[100];
  return dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
}

DicomInstance write_mass_segmentation(const std::string& source_path,
                                      const std::vector<uint8_t>& mask, int rows, int cols,
                                      const std::string& algorithm, const std::string& out_path) {
  dcmtk_support::quiet_dcmtk_warnings();
  const auto source = dcmtk_support::load_source_film(source_path, "a DICOM Segmentation");
  DcmDataset& film = source->data();
  const std::string& study = source->id.study_uid;
  const std::string& series = source->id.series_uid;
  const std::string& instance = source->id.sop_instance_uid;
  const std::string& sop_class = source->id.sop_class_uid;
  if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535 ||
      mask.size() != static_cast<size_t>(rows) * cols)
    throw DataError(out_path + ": the mask (" + std::to_string(mask.size()) + " values for " +
                    std::to_string(rows) + "x" + std::to_string(cols) + ") does not fit the film");

  const IODGeneralEquipmentModule::EquipmentInfo equipment("HDS training service", "hds-trainer",
                                                           "-", algorithm.c_str());
  // A person name in its components (family^given): a bare word reads as the retired form.
  const ContentIdentificationMacro content("1", "MASSES", "Masses found by the HDS U-ResNet",
                                           "HDS^Trainer");
  DcmSegmentation* created = nullptr;
  check(DcmSegmentation::createBinarySegmentation(created, static_cast<Uint16>(rows),
                                                  static_cast<Uint16>(cols), equipment, content),
        out_path, "creating it");
  const std::unique_ptr<DcmSegmentation> segmentation(created);
  check(segmentation->importFromSourceImage(film), out_path,
        "taking patient and study from " + source_path);
  // Projection films have no patient coordinates, so General Image needs Patient Orientation
  // (Type 2C): the film's when it has one (MG films must), else present and empty.
  const std::string orientation = text_of_all(film, DCM_PatientOrientation);
  segmentation->getRules()->getByTag(DCM_PatientOrientation)->setType("2");
  if (!orientation.empty()) {
    check(segmentation->getGeneralImage().setPatientOrientation(orientation.c_str()), out_path,
          "the patient orientation");
  }
  // The derivation reference places the frame.
  segmentation->getFrameOfReference().clearData();
  segmentation->getFrameOfReference().getRules()->getByTag(DCM_FrameOfReferenceUID)->setType("1C");
  // Without a frame of reference its Position Reference Indicator does not belong either.
  segmentation->getFrameOfReference()
      .getRules()
      ->getByTag(DCM_PositionReferenceIndicator)
      ->setType("1C");
  check(segmentation->getSeries().setSeriesNumber("9001"), out_path, "the series number");
  check(segmentation->getSeries().setSeriesDescription("HDS U-ResNet masses"), out_path,
        "the series description");

  DcmSegment* created_segment = nullptr;
  check(
      DcmSegment::create(created_segment, "Mass",
                         CodeSequenceMacro("49755003", "SCT", "Morphologically altered structure"),
                         CodeSequenceMacro("4147007", "SCT", "Mass"), DcmSegTypes::SAT_AUTOMATIC,
                         algorithm.c_str()),
      out_path, "the segment");
  Uint16 segment_number = 0;
  check(segmentation->addSegment(created_segment, segment_number), out_path, "adding the segment");

  OFString spacing;
  if (film.findAndGetOFStringArray(DCM_PixelSpacing, spacing).good() && !spacing.empty()) {
    FGPixelMeasures measures;
    check(measures.setPixelSpacing(spacing), out_path, "the pixel spacing");
    check(segmentation->addForAllFrames(measures), out_path, "the pixel measures");
  }
  check(segmentation->getDimensions().addDimensionIndex(
            DCM_ReferencedSegmentNumber, new_dicom_uid(), DCM_SegmentIdentificationSequence,
            "ReferencedSegmentNumber"),
        out_path, "the dimension index");

  ImageSOPInstanceReferenceMacro* reference = nullptr;
  check(ImageSOPInstanceReferenceMacro::create(sop_class.c_str(), instance.c_str(), reference),
        out_path, "the film's reference");
  OFVector<ImageSOPInstanceReferenceMacro> sources;
  sources.push_back(*reference);
  delete reference;
  const std::unique_ptr<FGDerivationImage> derivation(FGDerivationImage::createMinimal(
      sources, "Segmentation of masses by the HDS U-ResNet",
      CodeSequenceMacro("113076", "DCM", "Segmentation"),
      CodeSequenceMacro("121322", "DCM", "Source image for image processing operation")));
  if (!derivation) throw DataError(out_path + ": cannot write the DICOM Segmentation: derivation");
  FGFrameContent frame_content;
  check(frame_content.setDimensionIndexValues(segment_number, 0), out_path, "the frame content");
  OFVector<FGBase*> per_frame;
  per_frame.push_back(derivation.get());
  per_frame.push_back(&frame_content);
  std::vector<Uint8> pixels(mask.begin(), mask.end());
  check(segmentation->addFrame(pixels.data(), segment_number, per_frame), out_path,
        "adding the frame");

  IODReferences references;
  references.add(new IODImageReference(text_of(film, DCM_PatientID).c_str(), study.c_str(),
                                       series.c_str(), instance.c_str(), sop_class.c_str()));
  segmentation->getCommonInstanceReference().addReferences(references, study.c_str());
  hds::common::replace_file_by(out_path, [&](const std::string& partial) {
    check(segmentation->saveFile(partial.c_str()), out_path, "saving it");
  });
  OFString written_series, written_instance;
  segmentation->getSeries().getSeriesInstanceUID(written_series);
  segmentation->getSOPCommon().getSOPInstanceUID(written_instance);
  return {study, written_series.c_str(), UID_SegmentationStorage, written_instance.c_str()};
}

}  // namespace hds::data

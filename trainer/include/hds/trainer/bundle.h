// A trained model as a self-describing folder in MONAI Bundle's layout, what `hds-trainer export
// --bundle` writes and `infer --checkpoint` also reads (docs/design.md §3, "Model bundles"):
//   configs/metadata.json   MONAI Bundle metadata: version, changelog, task, the input and output
//                           formats, intended use; and an "hds" section with what a reader needs
//                           to run it: network widths, preprocessing, normalisation, threshold,
//                           and the UID its DICOM reports name it by as a device
//   configs/training.pbtxt  the training configuration (hds text format)
//   models/model.pt         the weights in the reference layout with a probe (export.h), a dict
//                           Python's torch.load reads
//   docs/README.md          the model card
//   docs/metrics.json, .md  the evaluation the model was chosen by: the checkpoint's validation
//                           record and, when given, an `eval` run of it
// metadata.json is written last, so a folder without it is no bundle (an interrupted export).
#pragma once

#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"

namespace hds::trainer {

struct BundleOptions {
  std::string version = "0.1.0";  // the bundle's own version (MONAI: semantic versioning)
  std::string changelog;          // this version's entry; "" = where it was exported from
  std::string evaluation;         // an `eval --out` folder to include; "" = none
};

// Writes the bundle of `checkpoint` into `dir` (created). An existing bundle there is updated when
// `options.version` is new to its changelog (the older entries are kept); a folder holding anything
// else is refused. Throws CheckpointError (the checkpoint, e.g. without normalisation) or
// hds::config::ConfigError (the folder, the version, the evaluation) naming the problem.
void export_bundle(const std::string& checkpoint, const std::string& dir,
                   const BundleOptions& options);

// Whether `dir` holds a bundle (configs/metadata.json).
bool is_bundle(const std::string& dir);

// What running a bundle needs. Throws CheckpointError naming the file that is missing or wrong.
struct BundleModel {
  hds::config::Config config;  // with the overrides applied
  hds::data::PixelStatistics normalisation;
  std::string version;     // "<folder> <bundle version>"
  std::string device_uid;  // what its structured reports name it by (each version its own)
  std::string weights;     // models/model.pt
};
BundleModel read_bundle(const std::string& dir, const std::vector<std::string>& overrides = {});

}  // namespace hds::trainer

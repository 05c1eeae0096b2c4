// Fixed facts of the HDS architecture (docs/design.md §3), shared by the configuration's
// validation and the model. Trunk stages, downsamplings and the head count are fixed by the
// paper's design; widths, blocks per stage, dropout and the head set are configurable.
#pragma once

namespace hds::common {

constexpr int kTrunkStages = 11;   // encoder to decoder
constexpr int kDownsamplings = 5;  // six resolution levels
constexpr int kHeadCount = 6;      // heads 0 (coarsest, 1/32) .. 5 (full resolution)
// Five poolings in the trunk and two more in the classification heads: every classification map
// ends at 1/128 of the input, so input rows and columns must be multiples of 2^7.
constexpr int kInputMultiple = 128;
// Bounds far above any useful model (the paper: widths up to 128, 2 blocks a stage) that keep a
// mistyped width from allocating gigabytes before anything says so.
constexpr int kMaxWidth = 4096;
constexpr int kMaxBlocksPerStage = 64;

}  // namespace hds::common

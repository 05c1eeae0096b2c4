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
// Whether the model can take `side` rows or columns of input (a patch's, a film's).
constexpr bool valid_input_side(long side) { return side > 0 && side % kInputMultiple == 0; }
// BatchNorm in training mode needs two values a channel. The classification heads' deepest maps
// are 1/kInputMultiple of the patch, so a step of one patch of at most 255x255 has one: it cannot
// train (the epoch's last step can hand a rank such a lone patch).
constexpr bool batch_norm_lacks_values(long patches, long rows, long cols) {
  return patches * (rows / kInputMultiple) * (cols / kInputMultiple) < 2;
}
// Bounds far above any useful model (the paper: widths up to 128, 2 blocks a stage) that keep a
// mistyped width from allocating gigabytes before anything says so.
constexpr int kMaxWidth = 4096;
constexpr int kMaxBlocksPerStage = 64;

}  // namespace hds::common

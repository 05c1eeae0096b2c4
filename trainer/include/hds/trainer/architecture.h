// Fixed facts of the HDS architecture (DESIGN §3), shared by code that does not need LibTorch.
#pragma once

namespace hds::trainer {

// Trunk stages, downsamplings and head count are fixed by the paper's design; widths, blocks per
// stage, dropout and the head set are configurable.
constexpr int kTrunkStages = 11;
constexpr int kDownsamplings = 5;
constexpr int kHeadCount = 6;
// Every classification map ends at 1/128 of the input; inputs must be multiples of this.
constexpr int kInputMultiple = 128;

}  // namespace hds::trainer

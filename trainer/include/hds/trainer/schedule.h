// Per-epoch schedules (docs/design.md §3): head-weight decay and learning-rate steps. Pure
// functions of the configuration and the 1-based epoch, so a resumed run recomputes exactly what it
// had.
#pragma once

#include <vector>

#include "config.pb.h"

namespace hds::trainer {

// Which loss terms each head contributes under the configured Table 1 variant.
struct HeadTerms {
  bool segmentation = false;
  bool classification = false;
};
HeadTerms head_terms(hds::config::LossConfig::Variant variant, int head);

// Head weights in force during 1-based `epoch`, indexed by head 0..5. The weights of heads 0..4
// are multiplied by d = final_decay^(1/epochs) at the end of every epoch (so w0·d^(epoch-1),
// built by repeated multiplication as the reference does); the last head never decays.
std::vector<double> seg_head_weights(const hds::config::Config& config, int epoch);
std::vector<double> cls_head_weights(const hds::config::Config& config, int epoch);

// Learning rate during 1-based `epoch` of train.epochs E (optimizer.schedule):
//   STEP  lr·gamma^#{milestones s : s <= epoch - 1}
//   POLY  lr·(1 - (epoch - 1) / E)^poly_power
// then, for epoch <= W = optimizer.warmup_epochs, times epoch / (W + 1).
double learning_rate(const hds::config::Config& config, int epoch);

}  // namespace hds::trainer

// The HDS losses (docs/design.md §3): per-head pixel cross-entropy, the sparse MIL classification
// loss, and their weighted sum. Stateless; thread-safe.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "config.pb.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

// Pixel-mean 2-class cross-entropy of `logits` [B,2,H,W] against `mask` [B,H,W] (int64 0/1).
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& mask);

// 1 - soft Dice of the mass class: 1 - (2·Σ p·g + 1) / (Σ p + Σ g + 1) over every pixel of the
// batch, p the softmax mass probability of `logits` [B,2,H,W], g the `mask` [B,H,W]. Summing over
// the whole batch keeps it defined for patches without a mass; the 1 keeps an all-empty batch
// with an all-empty prediction at 0.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& mask);

// A head's segmentation term as loss.segmentation says: the cross-entropy, plus
// dice_weight · dice_loss for CROSS_ENTROPY_DICE.
torch::Tensor segmentation_term(const torch::Tensor& logits, const torch::Tensor& mask,
                                const hds::config::LossConfig& config);

// Index (row-major over the map) of each sample's bag instance: the smallest class-0 logit
// (first on ties) or the largest softmax foreground probability. No gradient flows through it.
torch::Tensor mil_instance(const torch::Tensor& logits, hds::config::LossConfig::MilRule rule);

// Sparse MIL loss of a classification map `logits` [B,2,h,w] against `labels` [B] (int64):
// batch-mean cross-entropy of the chosen instance's two logits, plus
// mu · Σ softmax foreground over every instance / B.
torch::Tensor mil_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                       hds::config::LossConfig::MilRule rule, double sparsity_mu);

// Image-level mass probability from a classification map: softmax of the two logits at the
// MIL instance. [B].
torch::Tensor image_probability(const torch::Tensor& cls_logits,
                                hds::config::LossConfig::MilRule rule);

// One step's loss and its parts (the parts detached, for logging and NaN reports).
struct LossTerms {
  torch::Tensor total;
  std::vector<int> heads;    // head index of each entry below
  std::vector<bool> seg_on;  // whether the variant enables the head's term
  std::vector<bool> cls_on;
  std::vector<double> seg;      // unweighted segmentation term per head (0 where it is off)
  std::vector<double> cls;      // unweighted MIL loss per head (0 where the term is off)
  double seg_weighted_sum = 0;  // Σ w_seg,i·SEG_i
  double cls_weighted_sum = 0;  // α·Σ w_cls,i·MIL_i
};

// L = Σ_i w_seg,i·SEG_i + α·Σ_i w_cls,i·MIL_i (SEG: segmentation_term) over the built heads whose
// term the variant enables. `seg_weights` / `cls_weights` are indexed by head 0..5.
LossTerms hds_loss(const HdsOutput& output, const std::vector<int>& heads,
                   const torch::Tensor& mask, const torch::Tensor& labels,
                   const hds::config::LossConfig& config, const std::vector<double>& seg_weights,
                   const std::vector<double>& cls_weights);

}  // namespace hds::trainer

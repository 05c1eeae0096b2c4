#include "hds/trainer/losses.h"

#include "hds/trainer/schedule.h"

namespace hds::trainer {
namespace F = torch::nn::functional;
using hds::config::LossConfig;

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& mask) {
  return F::cross_entropy(logits, mask);
}

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& mask) {
  const auto mass = torch::softmax(logits, 1).select(1, 1);
  const auto truth = mask.to(mass.scalar_type());
  const auto overlap = (mass * truth).sum();
  return 1 - (2 * overlap + 1) / (mass.sum() + truth.sum() + 1);
}

torch::Tensor segmentation_term(const torch::Tensor& logits, const torch::Tensor& mask,
                                const LossConfig& config) {
  const auto ce = segmentation_loss(logits, mask);
  if (config.segmentation() == LossConfig::CROSS_ENTROPY_DICE)
    return ce + config.dice_weight() * dice_loss(logits, mask);
  return ce;
}

torch::Tensor mil_instance(const torch::Tensor& logits, LossConfig::MilRule rule) {
  torch::NoGradGuard no_grad;
  const auto instances = logits.flatten(2);  // [B, 2, N], row-major over the map
  if (rule == LossConfig::MAX_FOREGROUND_PROBABILITY) {
    return torch::softmax(instances, 1).select(1, 1).argmax(1);
  }
  return instances.select(1, 0).argmin(1);
}

namespace {
// The two logits of each sample's chosen instance: [B, 2].
torch::Tensor chosen_logits(const torch::Tensor& logits, LossConfig::MilRule rule) {
  const auto instances = logits.flatten(2);
  const auto index = mil_instance(logits, rule);
  return instances.gather(2, index.view({-1, 1, 1}).expand({instances.size(0), 2, 1})).squeeze(2);
}
}  // namespace

torch::Tensor mil_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                       LossConfig::MilRule rule, double sparsity_mu) {
  const auto bag = F::cross_entropy(chosen_logits(logits, rule), labels);
  const auto foreground = torch::softmax(logits.flatten(2), 1).select(1, 1);
  return bag + sparsity_mu * foreground.sum() / logits.size(0);
}

torch::Tensor image_probability(const torch::Tensor& cls_logits, LossConfig::MilRule rule) {
  return torch::softmax(chosen_logits(cls_logits, rule), 1).select(1, 1);
}

LossTerms hds_loss(const HdsOutput& output, const std::vector<int>& heads,
                   const torch::Tensor& mask, const torch::Tensor& labels, const LossConfig& config,
                   const std::vector<double>& seg_weights, const std::vector<double>& cls_weights) {
  // Unweighted parts, copied to the host at once (one device sync a step).
  const auto off = torch::zeros({}, mask.options().dtype(torch::kFloat));
  std::vector<torch::Tensor> seg_parts, cls_parts;
  std::vector<double> seg_used, cls_used;  // the weight of each part, 0 where off
  torch::Tensor total;
  auto add = [&total](const torch::Tensor& term) { total = total.defined() ? total + term : term; };
  for (size_t i = 0; i < heads.size(); ++i) {
    const HeadTerms enabled = head_terms(config.variant(), heads[i]);
    seg_parts.push_back(off);
    cls_parts.push_back(off);
    seg_used.push_back(0);
    cls_used.push_back(0);
    if (enabled.segmentation) {
      const auto term = segmentation_term(output.seg[i], mask, config);
      seg_used.back() = seg_weights.at(heads[i]);
      add(seg_used.back() * term);
      seg_parts.back() = term.detach();
    }
    if (enabled.classification) {
      const auto mil = mil_loss(output.cls[i], labels, config.mil_rule(), config.sparsity_mu());
      cls_used.back() = config.alpha() * cls_weights.at(heads[i]);
      add(cls_used.back() * mil);
      cls_parts.back() = mil.detach();
    }
  }
  if (!total.defined()) {
    throw std::invalid_argument("hds_loss: the loss variant enables no term for the built heads");
  }
  seg_parts.insert(seg_parts.end(), cls_parts.begin(), cls_parts.end());
  const auto host = torch::stack(seg_parts).to(torch::kCPU, torch::kDouble);
  const auto* values = host.data_ptr<double>();
  LossTerms terms;
  terms.total = total;
  terms.heads = heads;
  const size_t n = heads.size();
  terms.seg.assign(values, values + n);
  terms.cls.assign(values + n, values + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    const HeadTerms enabled = head_terms(config.variant(), heads[i]);
    terms.seg_on.push_back(enabled.segmentation);
    terms.cls_on.push_back(enabled.classification);
    terms.seg_weighted_sum += seg_used[i] * terms.seg[i];
    terms.cls_weighted_sum += cls_used[i] * terms.cls[i];
  }
  return terms;
}

}  // namespace hds::trainer

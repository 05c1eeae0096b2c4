// The Hybrid Deep Supervision U-ResNet (docs/design.md §3): a pre-activation residual U-Net trunk
// with a segmentation head and a MIL classification head on each of its six resolution levels.
// Module names and registration order follow the authors' PyTorch model, so the state dict
// lines up entry for entry with theirs. Not thread-safe (a torch::nn::Module).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/common/architecture.h"

namespace hds::trainer {

using hds::common::kDownsamplings;
using hds::common::kHeadCount;
using hds::common::kInputMultiple;
using hds::common::kTrunkStages;

// Pre-activation residual block: BN → ReLU → conv3x3 → BN → ReLU → Dropout2d → conv3x3, + x.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int channels, double dropout);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  torch::nn::Conv2d conv2{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
};
TORCH_MODULE(ResidualBlock);

// The encoder-decoder trunk; returns the six head inputs, coarsest (the bottleneck) first.
class TrunkImpl : public torch::nn::Module {
 public:
  explicit TrunkImpl(const hds::config::ModelConfig& config);
  std::vector<torch::Tensor> forward(const torch::Tensor& image);

 private:
  torch::nn::ModuleList blocks{nullptr};   // [stage][block]
  torch::nn::ModuleList downs{nullptr};    // Sequential per downsampling
  torch::nn::ModuleList ups{nullptr};      // Sequential per upsampling
  torch::nn::ModuleList fusions{nullptr};  // skip fusion per upsampling
  torch::nn::Conv2d inconv{nullptr};
};
TORCH_MODULE(Trunk);

// Logits of every built head, in the order of HdsNet::heads() (coarsest first).
struct HdsOutput {
  std::vector<torch::Tensor> seg;  // [B, 2, H, W] each
  std::vector<torch::Tensor> cls;  // [B, 2, H/128, W/128] each
};

class HdsNetImpl : public torch::nn::Module {
 public:
  explicit HdsNetImpl(const hds::config::ModelConfig& config);

  // `image`: [B, in_channels, H, W] with H and W multiples of 128; throws std::invalid_argument
  // otherwise, naming the size.
  HdsOutput forward(const torch::Tensor& image);

  // Head indices that exist (0 = coarsest .. 5 = full resolution), ascending.
  const std::vector<int>& heads() const { return heads_; }
  // Rows x cols of a classification map for an input of that size.
  static std::pair<int64_t, int64_t> cls_map_size(int64_t rows, int64_t cols);

  // Kaiming normal (fan_in, gain √2) on every conv, zero biases; BN γ=1, β=0.
  void reset_parameters();

 private:
  std::vector<int> heads_;
  Trunk trunk{nullptr};
  torch::nn::ModuleList exit_seg{nullptr};
  torch::nn::ModuleList exit_cls{nullptr};
};
TORCH_MODULE(HdsNet);

// Trainable parameter elements (BN γ/β included).
int64_t count_parameters(torch::nn::Module& module);
// Conv2d modules with a kernel of `kernel_size` under `module`.
int count_convs(torch::nn::Module& module, int64_t kernel_size);

// The state dict in PyTorch's order: depth first, a module's own parameters then its own buffers,
// then its children in registration order — what `model.state_dict()` gives in Python.
std::vector<std::pair<std::string, torch::Tensor>> ordered_state_dict(torch::nn::Module& module);

// A one-line-per-module summary: name, type, parameter count.
std::string describe_modules(torch::nn::Module& module);

}  // namespace hds::trainer

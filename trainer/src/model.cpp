#include "hds/trainer/model.h"

#include <sstream>
#include <stdexcept>

namespace hds::trainer {
namespace nn = torch::nn;

namespace {

// nn::Sequential's templated forward cannot sit inside another Sequential; this one can.
class StepsImpl : public nn::SequentialImpl {
 public:
  using nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return nn::SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Steps);

nn::Conv2d conv(int in, int out, int kernel, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(bias));
}

// Bilinear ×2 with align_corners=true, as nn.Upsample(scale_factor=2) in the reference.
nn::Upsample upsample2() {
  return nn::Upsample(nn::UpsampleOptions()
                          .scale_factor(std::vector<double>{2.0, 2.0})
                          .mode(torch::kBilinear)
                          .align_corners(true));
}

// BN → ReLU → 1x1 conv: the reference's channel adapter, used bare and inside Sequentials.
void push_bn_relu_conv1x1(Steps& seq, int in, int out, bool bias) {
  seq->push_back(nn::BatchNorm2d(in));
  // In place: BatchNorm's backward needs its input, not its output, so ReLU may overwrite it.
  seq->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
  seq->push_back(conv(in, out, 1, bias));
}

// The reference wraps BN → ReLU → conv in a module whose Sequential is called `model`.
class ConvBlockImpl : public nn::Module {
 public:
  ConvBlockImpl(int in, int out, bool bias) {
    Steps seq;
    push_bn_relu_conv1x1(seq, in, out, bias);
    model = register_module("model", seq);
  }
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }

 private:
  Steps model{nullptr};
};
TORCH_MODULE(ConvBlock);

// Skip fusion: concat(upsampled, skip) → BN → ReLU → 1x1 conv (2C → C, no bias).
class FusionImpl : public nn::Module {
 public:
  explicit FusionImpl(int channels) {
    conv2 = register_module("conv2", ConvBlock(2 * channels, channels, /*bias=*/false));
  }
  torch::Tensor forward(const torch::Tensor& upsampled, const torch::Tensor& skip) {
    return conv2->forward(torch::cat({upsampled, skip}, 1));
  }

 private:
  ConvBlock conv2{nullptr};
};
TORCH_MODULE(Fusion);

// Downsampling: BN → ReLU → 1x1 conv → maxpool where the width changes, else maxpool alone.
Steps make_down(int in, int out) {
  Steps seq;
  if (in != out) push_bn_relu_conv1x1(seq, in, out, /*bias=*/false);
  seq->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
  return seq;
}

// Upsampling: the width change (if any) happens first, at the low resolution.
Steps make_up(int in, int out) {
  Steps seq;
  if (in != out) push_bn_relu_conv1x1(seq, in, out, /*bias=*/false);
  seq->push_back(upsample2());
  return seq;
}

Steps make_seg_head(int head, int channels, double dropout) {
  Steps seq;
  seq->push_back(ResidualBlock(channels, dropout));
  seq->push_back(ConvBlock(channels, 2, /*bias=*/true));
  for (int i = 0; i < kHeadCount - 1 - head; ++i) seq->push_back(upsample2());
  return seq;
}

// Two (down → residual block) pairs with widths doubling up to 128, then an average pool that
// brings head i from 1/(32/2^i)/4 down to 1/128, then the 2-logit classifier.
Steps make_cls_head(int head, int channels, double dropout) {
  constexpr int kMaxWidth = 128;
  Steps seq;
  int width = channels;
  for (int pair = 0; pair < 2; ++pair) {
    const int next = std::min(2 * width, kMaxWidth);
    seq->push_back(make_down(width, next));
    width = next;
    seq->push_back(ResidualBlock(width, dropout));
  }
  if (head >= 1) {
    const int64_t pool = int64_t{1} << head;
    seq->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(pool).stride(pool)));
  }
  seq->push_back(ConvBlock(width, 2, /*bias=*/true));
  return seq;
}

}  // namespace

ResidualBlockImpl::ResidualBlockImpl(int channels, double dropout_p) {
  bn1 = register_module("bn1", nn::BatchNorm2d(channels));
  conv1 = register_module("conv1", conv(channels, channels, 3, /*bias=*/false));
  bn2 = register_module("bn2", nn::BatchNorm2d(channels));
  conv2 = register_module("conv2", conv(channels, channels, 3, /*bias=*/false));
  dropout = register_module("dropout", nn::Dropout2d(nn::Dropout2dOptions(dropout_p)));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  // ReLU in place on BatchNorm's output saves a tensor a layer (BN's backward needs its input).
  auto y = bn1->forward(x).relu_();
  y = bn2->forward(conv1->forward(y)).relu_();
  return x + conv2->forward(dropout->forward(y));
}

TrunkImpl::TrunkImpl(const hds::config::ModelConfig& config) {
  const auto& widths = config.widths();
  blocks = register_module("blocks", nn::ModuleList());
  for (int stage = 0; stage < kTrunkStages; ++stage) {
    nn::ModuleList stage_blocks;
    for (int b = 0; b < config.blocks_per_stage(); ++b) {
      stage_blocks->push_back(ResidualBlock(widths[stage], config.stage_dropout(stage)));
    }
    blocks->push_back(stage_blocks);
  }
  downs = register_module("downs", nn::ModuleList());
  ups = register_module("ups", nn::ModuleList());
  fusions = register_module("fusions", nn::ModuleList());
  for (int k = 0; k < kDownsamplings; ++k) {
    downs->push_back(make_down(widths[k], widths[k + 1]));
    const int decoder_in = widths[kDownsamplings + k];
    const int decoder_out = widths[kDownsamplings + k + 1];
    ups->push_back(make_up(decoder_in, decoder_out));
    fusions->push_back(Fusion(decoder_out));
  }
  inconv = register_module("inconv", conv(config.in_channels(), widths[0], 3, /*bias=*/false));
}

std::vector<torch::Tensor> TrunkImpl::forward(const torch::Tensor& image) {
  auto run_stage = [this](int stage, torch::Tensor x) {
    for (const auto& block : *blocks[stage]->as<nn::ModuleList>()) {
      x = block->as<ResidualBlock>()->forward(x);
    }
    return x;
  };
  std::vector<torch::Tensor> skips;
  auto x = inconv->forward(image);
  for (int k = 0; k < kDownsamplings; ++k) {
    x = run_stage(k, x);
    skips.push_back(x);
    x = downs[k]->as<Steps>()->forward(x);
  }
  std::vector<torch::Tensor> head_inputs;
  x = run_stage(kDownsamplings, x);
  head_inputs.push_back(x);
  for (int k = 0; k < kDownsamplings; ++k) {
    x = ups[k]->as<Steps>()->forward(x);
    x = fusions[k]->as<Fusion>()->forward(x, skips[kDownsamplings - 1 - k]);
    x = run_stage(kDownsamplings + 1 + k, x);
    head_inputs.push_back(x);
  }
  return head_inputs;
}

HdsNetImpl::HdsNetImpl(const hds::config::ModelConfig& config)
    : heads_(config.heads().begin(), config.heads().end()) {
  trunk = register_module("trunk", Trunk(config));
  exit_seg = register_module("exit_seg", nn::ModuleList());
  exit_cls = register_module("exit_cls", nn::ModuleList());
  for (int head : heads_) {
    // Head i reads decoder level i: stage 5 + i.
    const int channels = config.widths(kDownsamplings + head);
    exit_seg->push_back(make_seg_head(head, channels, config.head_dropout(head)));
  }
  for (int head : heads_) {
    const int channels = config.widths(kDownsamplings + head);
    exit_cls->push_back(make_cls_head(head, channels, config.head_dropout(head)));
  }
  reset_parameters();
}

HdsOutput HdsNetImpl::forward(const torch::Tensor& image) {
  if (image.dim() != 4 || !hds::common::valid_input_side(image.size(2)) ||
      !hds::common::valid_input_side(image.size(3))) {
    std::ostringstream msg;
    msg << "HdsNet input " << image.sizes() << ": expected [batch, channels, H, W] with H and W "
        << "positive multiples of " << kInputMultiple;
    throw std::invalid_argument(msg.str());
  }
  const auto features = trunk->forward(image);
  HdsOutput out;
  for (size_t i = 0; i < heads_.size(); ++i) {
    const auto& x = features[heads_[i]];
    out.seg.push_back(exit_seg[i]->as<Steps>()->forward(x));
    out.cls.push_back(exit_cls[i]->as<Steps>()->forward(x));
  }
  return out;
}

std::pair<int64_t, int64_t> HdsNetImpl::cls_map_size(int64_t rows, int64_t cols) {
  return {rows / kInputMultiple, cols / kInputMultiple};
}

void HdsNetImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, /*a=*/0, torch::kFanIn, torch::kReLU);
      if (c->bias.defined()) c->bias.zero_();
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      bn->reset_parameters();
    }
  }
}

int64_t count_parameters(nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) total += p.numel();
  }
  return total;
}

int count_convs(nn::Module& module, int64_t kernel_size) {
  int count = 0;
  for (const auto& m : module.modules()) {
    if (auto* c = m->as<nn::Conv2d>()) {
      if (c->options.kernel_size()->at(0) == kernel_size) ++count;
    }
  }
  return count;
}

namespace {
void append_state(nn::Module& module, const std::string& prefix,
                  std::vector<std::pair<std::string, torch::Tensor>>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& child : module.named_children()) {
    append_state(*child.value(), prefix + child.key() + ".", out);
  }
}
}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> ordered_state_dict(nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  append_state(module, "", out);
  return out;
}

std::string describe_modules(nn::Module& module) {
  std::ostringstream out;
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    // One line per top-level part and per head keeps the summary readable.
    const auto depth = std::count(item.key().begin(), item.key().end(), '.');
    if (depth > 1) continue;
    // Module::name() is the demangled C++ class; the bare class name reads better.
    std::string type = item.value()->name();
    type = type.substr(type.rfind("::") == std::string::npos ? 0 : type.rfind("::") + 2);
    if (type.size() > 4 && type.compare(type.size() - 4, 4, "Impl") == 0)
      type.resize(type.size() - 4);
    out << item.key() << "  " << type << "  params " << count_parameters(*item.value()) << "\n";
  }
  return out.str();
}

}  // namespace hds::trainer

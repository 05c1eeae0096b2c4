#include "hds/trainer/step_compute.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <stdexcept>

namespace hds::trainer {
using hds::config::TrainConfig;

namespace {

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_enabled for
// CUDA, ...) by ones that take the device type; Debian's LibTorch is 1.13, the GPU machine's 2.x.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void set_autocast_enabled(c10::DeviceType device, bool on) {
  at::autocast::set_autocast_enabled(device, on);
}
at::ScalarType autocast_dtype(c10::DeviceType device) {
  return at::autocast::get_autocast_dtype(device);
}
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) {
  at::autocast::set_autocast_dtype(device, dtype);
}
#else
bool autocast_enabled(c10::DeviceType device) {
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled()
                                        : at::autocast::is_enabled();
}
void set_autocast_enabled(c10::DeviceType device, bool on) {
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_enabled(on);
  }
}
at::ScalarType autocast_dtype(c10::DeviceType device) {
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                        : at::autocast::get_autocast_gpu_dtype();
}
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) {
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
}
#endif

// bfloat16 autocast on one device type for the scope's lifetime (this thread only), as Python's
// `torch.autocast(device, torch.bfloat16)`: the casts of the weights are cached for the scope and
// dropped when the outermost scope ends.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(c10::DeviceType device)
      : device_(device),
        was_enabled_(autocast_enabled(device)),
        old_dtype_(autocast_dtype(device)) {
    set_autocast_enabled(device_, true);
    set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast_enabled(device_, was_enabled_);
    set_autocast_dtype(device_, old_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_;
  at::ScalarType old_dtype_;
};

std::vector<torch::Tensor> to_float(const std::vector<torch::Tensor>& logits) {
  std::vector<torch::Tensor> out;
  out.reserve(logits.size());
  for (const auto& l : logits) out.push_back(l.to(torch::kFloat));
  return out;
}

torch::Tensor prepare_input(const torch::Tensor& images, const StepCompute& compute) {
  return compute.channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images;
}

}  // namespace

StepCompute step_compute(const TrainConfig& train, const torch::Device& device) {
  if (train.precision() == TrainConfig::BF16 && device.is_cpu()) {
    throw std::invalid_argument(
        "train.precision = BF16 needs train.device = cuda: on CPU, LibTorch 1.13's bfloat16 "
        "convolution backward returns non-finite weight gradients at full resolution (512x384: "
        "NaN loss at step 2); use FP32 on CPU");
  }
  StepCompute compute;
  compute.precision = train.precision();
  compute.channels_last = train.channels_last();
  compute.cudnn_autotune = train.cudnn_autotune();
  return compute;
}

void prepare_model(HdsNet& model, const StepCompute& compute) {
  at::globalContext().setBenchmarkCuDNN(compute.cudnn_autotune);
  const auto format =
      compute.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  auto relayout = [format](torch::Tensor& t) {
    if (t.dim() == 4 && !t.is_contiguous(format)) t.set_data(t.contiguous(format));
  };
  for (auto& parameter : model->parameters()) relayout(parameter);
  for (auto& buffer : model->buffers()) relayout(buffer);
}

LossTerms forward_and_loss(HdsNet& model, const torch::Tensor& images, const torch::Tensor& masks,
                           const torch::Tensor& labels, const hds::config::LossConfig& loss,
                           const std::vector<double>& seg_weights,
                           const std::vector<double>& cls_weights, const StepCompute& compute) {
  const torch::Tensor input = prepare_input(images, compute);
  if (compute.precision == TrainConfig::FP32) {
    return hds_loss(model->forward(input), model->heads(), masks, labels, loss, seg_weights,
                    cls_weights);
  }
  HdsOutput output;
  {
    Bf16Autocast autocast(input.device().type());
    output = model->forward(input);
  }
  output.seg = to_float(output.seg);
  output.cls = to_float(output.cls);
  return hds_loss(output, model->heads(), masks, labels, loss, seg_weights, cls_weights);
}

void run_optimisation_step(torch::optim::Optimizer& optimizer, GradientSync* sync,
                           double gradient_share, const StepPhases& phases) {
  if (sync) {
    sync->begin_step(gradient_share);
  } else {
    optimizer.zero_grad();
  }
  phases.forward_and_backward();
  if (sync) {
    const auto finish = [sync] { sync->finish_step(); };
    if (phases.around_sync_wait) {
      phases.around_sync_wait(finish);
    } else {
      finish();
    }
  }
  if (phases.before_update) phases.before_update();
  optimizer.step();
}

}  // namespace hds::trainer

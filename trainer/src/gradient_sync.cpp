#include "hds/trainer/gradient_sync.h"

#include "gradient_sync_backends.h"

namespace hds::trainer {

std::vector<std::vector<int>> plan_buckets(const std::vector<int64_t>& parameter_bytes,
                                           int64_t bucket_bytes) {
  std::vector<std::vector<int>> buckets;
  int64_t filled = 0;
  for (int i = static_cast<int>(parameter_bytes.size()) - 1; i >= 0; --i) {
    const int64_t bytes = parameter_bytes[static_cast<size_t>(i)];
    if (buckets.empty() || filled + bytes > bucket_bytes) {
      if (!buckets.empty() && buckets.back().empty()) buckets.pop_back();
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += bytes;
  }
  return buckets;
}

GradientSync::GradientSync(const World& world, std::vector<torch::Tensor> parameters,
                           int64_t bucket_bytes, const torch::Device& device)
    : world_(world), parameters_(std::move(parameters)) {
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const torch::Tensor& p = parameters_[i];
    if (p.scalar_type() != torch::kFloat || p.device() != device) {
      throw WorldError("gradient sync: parameter " + std::to_string(i) + " is " +
                       std::string(c10::toString(p.scalar_type())) + " on " + p.device().str() +
                       "; every parameter must be float32 on " + device.str());
    }
    sizes.push_back(p.numel() * static_cast<int64_t>(sizeof(float)));
  }
  location_.resize(parameters_.size());
  for (const auto& members : plan_buckets(sizes, bucket_bytes)) {
    Bucket bucket;
    int64_t elements = 0;
    for (int p : members) {
      location_[static_cast<size_t>(p)] = {static_cast<int>(buckets_.size()),
                                           static_cast<int>(bucket.parameters.size())};
      bucket.parameters.push_back(p);
      bucket.offsets.push_back(elements);
      elements += parameters_[static_cast<size_t>(p)].numel();
    }
    bucket.flat =
        torch::zeros({elements}, torch::TensorOptions().dtype(torch::kFloat).device(device));
    bucket.arrived.assign(members.size(), false);
    buckets_.push_back(std::move(bucket));
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const int index = static_cast<int>(i);
    hook_handles_.push_back(parameters_[i].register_hook(
        [this, index](const torch::Tensor& gradient) { on_gradient(index, gradient); }));
  }
}

GradientSync::~GradientSync() {
  for (size_t i = 0; i < hook_handles_.size(); ++i) parameters_[i].remove_hook(hook_handles_[i]);
}

int64_t GradientSync::bucket_bytes(int bucket) const {
  return buckets_.at(static_cast<size_t>(bucket)).flat.numel() *
         static_cast<int64_t>(sizeof(float));
}

void GradientSync::begin_step(double weight) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_step_) throw std::logic_error("gradient sync: begin_step twice without finish_step");
  in_step_ = true;
  weight_ = weight;
  next_to_start_ = 0;
  started_during_backward_ = 0;
  for (Bucket& bucket : buckets_) {
    bucket.arrived.assign(bucket.arrived.size(), false);
    bucket.arrived_count = 0;
  }
}

void GradientSync::on_gradient(int parameter, const torch::Tensor& gradient) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_step_) {
    throw std::logic_error("gradient sync: a backward pass ran outside begin_step/finish_step");
  }
  const auto [b, slot] = location_[static_cast<size_t>(parameter)];
  Bucket& bucket = buckets_[static_cast<size_t>(b)];
  if (bucket.arrived[static_cast<size_t>(slot)]) {
    throw std::logic_error("gradient sync: parameter " + std::to_string(parameter) +
                           " received two gradients in one backward pass");
  }
  torch::NoGradGuard no_grad;
  const int64_t n = parameters_[static_cast<size_t>(parameter)].numel();
  torch::Tensor view = bucket.flat.narrow(0, bucket.offsets[static_cast<size_t>(slot)], n);
  view.copy_(gradient.reshape({-1}));
  if (weight_ != 1) view.mul_(weight_);
  bucket.arrived[static_cast<size_t>(slot)] = true;
  ++bucket.arrived_count;
  const size_t before = next_to_start_;
  start_ready_buckets();
  started_during_backward_ += static_cast<int>(next_to_start_ - before);
}

void GradientSync::start_ready_buckets() {
  while (next_to_start_ < buckets_.size()) {
    Bucket& bucket = buckets_[next_to_start_];
    if (bucket.arrived_count < static_cast<int>(bucket.parameters.size())) return;
    start_sum(bucket);
    ++next_to_start_;
  }
}

void GradientSync::finish_step() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_step_) throw std::logic_error("gradient sync: finish_step without begin_step");
  torch::NoGradGuard no_grad;
  for (; next_to_start_ < buckets_.size(); ++next_to_start_) {
    Bucket& bucket = buckets_[next_to_start_];
    for (size_t slot = 0; slot < bucket.parameters.size(); ++slot) {
      if (bucket.arrived[slot]) continue;
      const int64_t n = parameters_[static_cast<size_t>(bucket.parameters[slot])].numel();
      bucket.flat.narrow(0, bucket.offsets[slot], n).zero_();
    }
    start_sum(bucket);
  }
  wait_for_sums();
  for (const Bucket& bucket : buckets_) {
    for (size_t slot = 0; slot < bucket.parameters.size(); ++slot) {
      torch::Tensor& parameter = parameters_[static_cast<size_t>(bucket.parameters[slot])];
      const torch::Tensor sum =
          bucket.flat.narrow(0, bucket.offsets[slot], parameter.numel()).view(parameter.sizes());
      torch::Tensor& grad = parameter.mutable_grad();
      if (grad.defined()) {
        grad.copy_(sum);
      } else {
        grad = sum.clone();
      }
    }
  }
  in_step_ = false;
}

std::unique_ptr<GradientSync> GradientSync::create(const World& world,
                                                   std::vector<torch::Tensor> parameters,
                                                   const hds::config::DistributedConfig& config,
                                                   const torch::Device& device) {
  using Backend = hds::config::DistributedConfig;
  const auto bucket_bytes = static_cast<int64_t>(config.bucket_megabytes() * 1024 * 1024);
  const bool nccl =
      config.backend() == Backend::NCCL || (config.backend() == Backend::AUTO && device.is_cuda());
  if (nccl) return make_nccl_gradient_sync(world, std::move(parameters), bucket_bytes, device);
  if (!device.is_cpu()) {
    throw WorldError("distributed.backend MPI sums CPU tensors; train.device is " + device.str() +
                     " (use NCCL or AUTO)");
  }
  return make_mpi_gradient_sync(world, std::move(parameters), bucket_bytes);
}

}  // namespace hds::trainer

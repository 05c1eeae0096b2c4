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

// Runs after autograd has accumulated a parameter's gradient for this backward pass.
class BucketedGradientSync::AccumulatedHook : public torch::autograd::FunctionPostHook {
 public:
  AccumulatedHook(BucketedGradientSync& sync, int parameter) : sync_(sync), parameter_(parameter) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    sync_.on_accumulated(parameter_);
    return outputs;
  }

 private:
  BucketedGradientSync& sync_;
  int parameter_;
};

BucketedGradientSync::BucketedGradientSync(const World& world,
                                           std::vector<torch::Tensor> parameters,
                                           int64_t bucket_bytes, const torch::Device& device)
    : world_(world), parameters_(std::move(parameters)) {
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const torch::Tensor& p = parameters_[i];
    if (p.scalar_type() != torch::kFloat || p.device() != device ||
        !p.is_non_overlapping_and_dense()) {
      throw WorldError("gradient sync: parameter " + std::to_string(i) + " is " +
                       std::string(c10::toString(p.scalar_type())) + " on " + p.device().str() +
                       (p.is_non_overlapping_and_dense() ? "" : ", not dense") +
                       "; every parameter must be dense float32 on " + device.str());
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
      elements += parameters_[static_cast<size_t>(p)].numel();
    }
    bucket.flat =
        torch::zeros({elements}, torch::TensorOptions().dtype(torch::kFloat).device(device));
    int64_t offset = 0;
    for (int p : members) {
      const torch::Tensor& parameter = parameters_[static_cast<size_t>(p)];
      // A dense tensor's strides address exactly numel() consecutive elements, in its own order
      // (NCHW or channels-last): the same on every rank, whose parameters share one layout.
      bucket.views.push_back(
          bucket.flat.as_strided(parameter.sizes(), parameter.strides(), offset));
      offset += parameter.numel();
    }
    bucket.arrived.assign(members.size(), false);
    buckets_.push_back(std::move(bucket));
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    accumulators_.push_back(torch::autograd::impl::grad_accumulator(parameters_[i]));
    hook_keys_.push_back(accumulators_.back()->add_post_hook(
        std::make_unique<AccumulatedHook>(*this, static_cast<int>(i))));
  }
}

BucketedGradientSync::~BucketedGradientSync() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
  // The optimizer's zero_grad detaches gradients in place, which views refuse: gradients of
  // their own from here on.
  for (auto& parameter : parameters_) parameter.mutable_grad().reset();
}

int64_t BucketedGradientSync::bucket_bytes(int bucket) const {
  return buckets_.at(static_cast<size_t>(bucket)).flat.numel() *
         static_cast<int64_t>(sizeof(float));
}

void BucketedGradientSync::begin_step(double weight) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_step_) throw std::logic_error("gradient sync: begin_step twice without finish_step");
  in_step_ = true;
  weight_ = weight;
  next_to_start_ = 0;
  started_during_backward_ = 0;
  torch::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    bucket.flat.zero_();
    for (size_t slot = 0; slot < bucket.parameters.size(); ++slot) {
      parameters_[static_cast<size_t>(bucket.parameters[slot])].mutable_grad() = bucket.views[slot];
    }
    bucket.arrived.assign(bucket.arrived.size(), false);
    bucket.arrived_count = 0;
  }
}

void BucketedGradientSync::on_accumulated(int parameter) {
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
  bucket.arrived[static_cast<size_t>(slot)] = true;
  ++bucket.arrived_count;
  const size_t before = next_to_start_;
  start_ready_buckets();
  started_during_backward_ += static_cast<int>(next_to_start_ - before);
}

void BucketedGradientSync::start_ready_buckets() {
  while (next_to_start_ < buckets_.size()) {
    Bucket& bucket = buckets_[next_to_start_];
    if (bucket.arrived_count < static_cast<int>(bucket.parameters.size())) return;
    start_bucket(bucket);
    ++next_to_start_;
  }
}

void BucketedGradientSync::start_bucket(Bucket& bucket) {
  for (size_t slot = 0; slot < bucket.parameters.size(); ++slot) {
    const torch::Tensor& grad = parameters_[static_cast<size_t>(bucket.parameters[slot])].grad();
    if (!grad.defined() || !grad.is_same(bucket.views[slot])) {
      // Autograd accumulated elsewhere (someone reset .grad after begin_step): summing the bucket
      // would silently drop this gradient.
      throw std::logic_error(
          "gradient sync: the gradient of parameter " + std::to_string(bucket.parameters[slot]) +
          " was replaced during the step (begin_step zeroes the gradients: no zero_grad between)");
    }
  }
  torch::NoGradGuard no_grad;
  if (weight_ != 1) bucket.flat.mul_(weight_);
  start_sum(bucket);
}

void BucketedGradientSync::finish_step() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_step_) throw std::logic_error("gradient sync: finish_step without begin_step");
  in_step_ = false;
  // Parameters that got no gradient this step hold the zeros begin_step wrote.
  for (; next_to_start_ < buckets_.size(); ++next_to_start_) start_bucket(buckets_[next_to_start_]);
  wait_for_sums();
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

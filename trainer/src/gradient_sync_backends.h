// The backends of GradientSync, one translation unit each; GradientSync::create picks one. What
// they share is the bucket machinery (gradient_sync.h's header comment says how it works); each
// backend only starts a bucket's sum and waits for the sums.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <vector>

#include "hds/trainer/gradient_sync.h"

namespace hds::trainer {

class BucketedGradientSync : public GradientSync {
 public:
  ~BucketedGradientSync() override;

  void begin_step(double weight) override;
  void finish_step() override;
  int bucket_count() const override { return static_cast<int>(buckets_.size()); }
  int64_t bucket_bytes(int bucket) const override;
  int started_during_backward() const override { return started_during_backward_; }

 protected:
  struct Bucket {
    torch::Tensor flat;                // float32, on the device
    std::vector<int> parameters;       // indices into parameters_
    std::vector<torch::Tensor> views;  // each parameter's gradient: a view into `flat`
    std::vector<bool> arrived;         // gradient accumulated in this step
    int arrived_count = 0;
  };

  BucketedGradientSync(const World& world, std::vector<torch::Tensor> parameters,
                       int64_t bucket_bytes, const torch::Device& device);

  // Starts the in-place sum over ranks of bucket.flat. Called in bucket order, from a gradient
  // hook (autograd's thread, with the accumulation queued on the current stream) or from
  // finish_step, never concurrently.
  virtual void start_sum(Bucket& bucket) = 0;
  // Returns when every started sum is done and visible to the current stream.
  virtual void wait_for_sums() = 0;

  const World& world_;
  std::vector<Bucket> buckets_;

 private:
  class AccumulatedHook;
  void on_accumulated(int parameter);
  // Starts, in order, the buckets whose parameters have all arrived (weighting them first).
  void start_ready_buckets();
  void start_bucket(Bucket& bucket);

  std::vector<torch::Tensor> parameters_;
  std::vector<std::pair<int, int>> location_;  // parameter -> (bucket, slot)
  // Autograd's accumulator of each parameter, held so that it (and the hook on it) stays the
  // one every backward pass uses, and the hook's key on it.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::mutex mutex_;
  bool in_step_ = false;
  double weight_ = 1;
  size_t next_to_start_ = 0;
  int started_during_backward_ = 0;
};

// MPI on a communication thread (mpi_gradient_sync.cpp): CPU tensors only.
std::unique_ptr<GradientSync> make_mpi_gradient_sync(const World& world,
                                                     std::vector<torch::Tensor> parameters,
                                                     int64_t bucket_bytes);

// NCCL on a CUDA stream of its own (nccl_gradient_sync.cpp, built with HDS_WITH_NCCL). Without
// NCCL in the build it throws WorldError saying how to build it.
std::unique_ptr<GradientSync> make_nccl_gradient_sync(const World& world,
                                                      std::vector<torch::Tensor> parameters,
                                                      int64_t bucket_bytes,
                                                      const torch::Device& device);

}  // namespace hds::trainer

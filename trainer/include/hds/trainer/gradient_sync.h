// Gradient averaging for data-parallel training (docs/design.md §5). The parameters are grouped
// into buckets of about distributed.bucket_megabytes, in reverse registration order (the order the
// backward pass produces their gradients). Each parameter's .grad is a view into its bucket's
// buffer (with the parameter's strides), so autograd accumulates straight into what is summed and
// the optimizer reads the result in place: no gradient is copied. A hook after each parameter's
// accumulation counts it in; a full bucket is all-reduced at once, while backward still runs, by
// the backend: MPI on a communication thread (CPU) or NCCL on its own CUDA stream. finish_step()
// waits for the buckets, so the optimizer step that follows sees the averages.
//
// Buckets start in index order on every rank (a bucket that fills early waits for the ones before
// it), so all ranks issue the same collectives in the same order. Each rank's gradient counts with
// the weight given to begin_step (its share of the step's patches), which makes the result the
// gradient of the mean loss over all patches of the step, also when the last step of an epoch
// leaves some ranks fewer patches or none.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

// Indices into `parameter_bytes` grouped into buckets of at most `bucket_bytes` (a parameter
// larger than that gets a bucket of its own), last parameter first.
std::vector<std::vector<int>> plan_buckets(const std::vector<int64_t>& parameter_bytes,
                                           int64_t bucket_bytes);

class GradientSync {
 public:
  // The backend `config` asks for (AUTO: NCCL for a CUDA device, else MPI), hooked to
  // `parameters` (float32, dense, all on `device`) until destroyed; their layout must not change
  // while it lives. Destroying it leaves the parameters without gradients. Throws WorldError when
  // the backend cannot serve the device or was not built in.
  static std::unique_ptr<GradientSync> create(const World& world,
                                              std::vector<torch::Tensor> parameters,
                                              const hds::config::DistributedConfig& config,
                                              const torch::Device& device);
  virtual ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Copies rank 0's values of `tensors` (any dtype, on the sync's device) into every rank.
  virtual void broadcast_from_root(const std::vector<torch::Tensor>& tensors) = 0;
  virtual std::string backend_name() const = 0;
  // Called by the watchdog's thread before the job is ended: makes collectives in flight return
  // so that the process can exit (NCCL's communicator is aborted). MPI needs nothing: MPI_Abort
  // ends every rank.
  virtual void abort() {}

  // Opens a step in which this rank's gradients count `weight` times (patches on this rank /
  // patches on all ranks): zeroes the buckets and (re)points every parameter's .grad at its view.
  // It stands in for the optimizer's zero_grad, which must not be called while the sync lives
  // (LibTorch 1.13's detaches in place, which a view refuses; 2.x's drops the views). Call before
  // backward; a rank without patches calls it with 0 and skips backward.
  void begin_step(double weight);
  // Starts the buckets not yet started (a parameter without a gradient contributes zeros) and waits
  // for all of them: the parameters' gradients then hold the weighted sums. Throws
  // std::logic_error when a gradient was replaced during the step (it would not be summed).
  void finish_step();

  int bucket_count() const { return static_cast<int>(buckets_.size()); }
  int64_t bucket_bytes(int bucket) const;
  // How many buckets the last step started from gradient hooks, i.e. during backward.
  int started_during_backward() const { return started_during_backward_; }

 protected:
  struct Bucket {
    torch::Tensor flat;                // float32, on the device
    std::vector<int> parameters;       // indices into parameters_
    std::vector<torch::Tensor> views;  // each parameter's gradient: a view into `flat`
    std::vector<bool> arrived;         // gradient accumulated in this step
    int arrived_count = 0;
  };

  GradientSync(const World& world, std::vector<torch::Tensor> parameters, int64_t bucket_bytes,
               const torch::Device& device);

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

}  // namespace hds::trainer

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
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

// Indices into `parameter_bytes` grouped into buckets of at most `bucket_bytes` (a parameter
// larger than that gets a bucket of its own), last parameter first.
std::vector<std::vector<int>> plan_buckets(const std::vector<int64_t>& parameter_bytes,
                                           int64_t bucket_bytes);

// The gradient averaging a training step uses: a backend's buckets (src/gradient_sync_backends.h
// holds the machinery common to the backends).
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
  virtual ~GradientSync() = default;

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
  virtual void begin_step(double weight) = 0;
  // Starts the buckets not yet started (a parameter without a gradient contributes zeros) and waits
  // for all of them: the parameters' gradients then hold the weighted sums. Throws
  // std::logic_error when a gradient was replaced during the step (it would not be summed).
  virtual void finish_step() = 0;

  virtual int bucket_count() const = 0;
  virtual int64_t bucket_bytes(int bucket) const = 0;
  // How many buckets the last step started from gradient hooks, i.e. during backward.
  virtual int started_during_backward() const = 0;

 protected:
  GradientSync() = default;
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;
};

}  // namespace hds::trainer

// NCCL backend of GradientSync (built with HDS_WITH_NCCL against a CUDA LibTorch). The
// communicator comes from a unique id that rank 0 creates and broadcasts over MPI. Each bucket's
// sum runs on a communication stream of its own, after an event that marks its gradients as
// copied on the compute stream; finish_step makes the compute stream wait for the last sum.
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <atomic>

#include "gradient_sync_backends.h"

namespace hds::trainer {

namespace {

void check(ncclResult_t result, const char* call) {
  if (result == ncclSuccess) return;
  throw WorldError(std::string(call) + " failed: " + ncclGetErrorString(result));
}

class NcclGradientSync final : public BucketedGradientSync {
 public:
  NcclGradientSync(const World& world, std::vector<torch::Tensor> parameters, int64_t bucket_bytes,
                   const torch::Device& device)
      : BucketedGradientSync(world, std::move(parameters), bucket_bytes, device),
        device_(device),
        comm_stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device.index())) {
    ncclUniqueId id{};
    if (world.is_root()) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    world.broadcast_bytes(&id, sizeof id, "NCCL id broadcast");
    c10::cuda::CUDAGuard guard(device_);
    check(ncclCommInitRank(&comm_, world.size(), id, world.rank()), "ncclCommInitRank");
  }

  ~NcclGradientSync() override {
    if (aborted_) return;  // the communicator is gone and the stream may never drain
    comm_stream_.synchronize();
    ncclCommDestroy(comm_);
  }

  void abort() override {
    if (!aborted_.exchange(true)) ncclCommAbort(comm_);
  }

  void broadcast_from_root(const std::vector<torch::Tensor>& tensors) override {
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream(device_.index());
    check(ncclGroupStart(), "ncclGroupStart");
    for (const torch::Tensor& tensor : tensors) {
      // A dense tensor's bytes are its storage span, laid out alike on every rank.
      if (!tensor.is_non_overlapping_and_dense() || tensor.device() != device_) {
        throw WorldError("gradient sync: broadcast needs dense tensors on " + device_.str());
      }
      check(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.nbytes(), ncclChar, 0, comm_,
                          stream.stream()),
            "ncclBroadcast");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
    stream.synchronize();
  }

  std::string backend_name() const override { return "nccl"; }

 protected:
  void start_sum(Bucket& bucket) override {
    c10::cuda::CUDAGuard guard(device_);
    // The gradients' accumulation and weighting, queued on the current stream.
    at::cuda::CUDAEvent accumulated;
    accumulated.record(c10::cuda::getCurrentCUDAStream(device_.index()));
    accumulated.block(comm_stream_);
    check(ncclAllReduce(bucket.flat.data_ptr(), bucket.flat.data_ptr(),
                        static_cast<size_t>(bucket.flat.numel()), ncclFloat, ncclSum, comm_,
                        comm_stream_.stream()),
          "ncclAllReduce");
  }

  void wait_for_sums() override {
    c10::cuda::CUDAGuard guard(device_);
    at::cuda::CUDAEvent summed;
    summed.record(comm_stream_);
    summed.block(c10::cuda::getCurrentCUDAStream(device_.index()));
    ncclResult_t async = ncclSuccess;
    check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    check(async, "NCCL (asynchronous error, e.g. a peer rank died)");
  }

 private:
  torch::Device device_;
  c10::cuda::CUDAStream comm_stream_;
  ncclComm_t comm_ = nullptr;
  std::atomic<bool> aborted_{false};
};

}  // namespace

std::unique_ptr<GradientSync> make_nccl_gradient_sync(const World& world,
                                                      std::vector<torch::Tensor> parameters,
                                                      int64_t bucket_bytes,
                                                      const torch::Device& device) {
  if (!device.is_cuda()) {
    throw WorldError("distributed.backend NCCL needs train.device = cuda, not " + device.str());
  }
  return std::make_unique<NcclGradientSync>(world, std::move(parameters), bucket_bytes, device);
}

}  // namespace hds::trainer

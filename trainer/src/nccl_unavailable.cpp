// Builds without NCCL (HDS_WITH_NCCL off, e.g. Debian's CPU LibTorch): asking for the NCCL
// backend says how to get it.
#include "gradient_sync_backends.h"

namespace hds::trainer {

std::unique_ptr<GradientSync> make_nccl_gradient_sync(const World&, std::vector<torch::Tensor>,
                                                      int64_t, const torch::Device&) {
  throw WorldError(
      "distributed.backend NCCL (or AUTO on cuda): this hds-trainer was built without NCCL; "
      "configure with -DHDS_WITH_NCCL=ON against a CUDA LibTorch (deploy/gpu/build.sh)");
}

}  // namespace hds::trainer

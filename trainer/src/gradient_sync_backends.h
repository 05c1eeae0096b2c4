// The backends of GradientSync, one translation unit each; GradientSync::create picks one.
#pragma once

#include <memory>
#include <vector>

#include "hds/trainer/gradient_sync.h"

namespace hds::trainer {

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

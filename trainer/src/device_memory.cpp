#include "device_memory.h"

// Defined by trainer/CMakeLists.txt when LibTorch brings c10_cuda.
#ifdef HDS_TORCH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace hds::trainer {

std::optional<DeviceMemory> device_memory(const torch::Device& device) {
#ifdef HDS_TORCH_HAS_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    // Index 0 of each statistic is the aggregate over the small and large pools.
    return DeviceMemory{stats.allocated_bytes[0].current, stats.reserved_bytes[0].current};
  }
#endif
  (void)device;
  return std::nullopt;
}

}  // namespace hds::trainer

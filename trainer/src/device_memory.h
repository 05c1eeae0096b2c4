// The CUDA caching allocator's view of a rank's GPU memory, for the metrics.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>

namespace hds::trainer {

struct DeviceMemory {
  int64_t allocated_bytes = 0;  // held by live tensors
  int64_t reserved_bytes = 0;   // taken from the device by the allocator (allocated + cached)
};

// The memory of `device` now; nullopt for the CPU, and in builds against a LibTorch without CUDA.
std::optional<DeviceMemory> device_memory(const torch::Device& device);

}  // namespace hds::trainer

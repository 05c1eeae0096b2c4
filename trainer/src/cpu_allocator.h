// A caching allocator for LibTorch's CPU tensors. LibTorch's default CPU allocator hands large
// blocks straight back to the OS, so every training step maps, faults in and zeroes its
// activations again; on virtual machines those page faults cost more than the convolutions
// (tests/bench/RESULTS.md). Caching freed blocks by size class makes steady-state steps
// allocation-free, as PyTorch's CUDA caching allocator does on GPUs. Thread-safe.
#pragma once

#include <cstddef>

namespace hds::trainer {

struct CpuAllocatorStats {
  size_t cached_bytes = 0;  // freed blocks kept for reuse
  size_t live_bytes = 0;    // blocks handed out and not yet freed
  size_t hits = 0;          // allocations served from the cache
  size_t misses = 0;        // allocations that went to the system
};

// Makes the caching allocator LibTorch's CPU allocator for this process (idempotent). Freed
// blocks are cached up to `max_cached_bytes` (0: a quarter of physical memory); beyond it they
// go back to the system.
void install_caching_cpu_allocator(size_t max_cached_bytes = 0);

CpuAllocatorStats caching_cpu_allocator_stats();

}  // namespace hds::trainer

#include "cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace hds::trainer {
namespace {

// Blocks below this come from malloc's heap anyway, without page faults: pass them through.
constexpr size_t kSmallBlock = size_t{1} << 16;
// Alignment LibTorch's kernels expect (AVX-512 loads).
constexpr size_t kAlignment = 64;

// Size classes: four per power of two, so at most ~19% of a block is slack while a step's
// repeated shapes land in the same class.
size_t size_class(size_t bytes) {
  size_t power = kSmallBlock;
  while (power < bytes) power <<= 1;
  const size_t quarter = power / 8;  // steps of 1/8 of the power between power/2 and power
  return (bytes + quarter - 1) / quarter * quarter;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t max_cached) : max_cached_(max_cached) {}

#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2 made allocate non-const and asks every allocator how to copy its blocks.
  c10::DataPtr allocate(size_t bytes) override {
#else
  c10::DataPtr allocate(size_t bytes) const override {
#endif
    if (bytes == 0) return {nullptr, nullptr, &free_block, c10::Device(c10::DeviceType::CPU)};
    const size_t size = bytes < kSmallBlock ? bytes : size_class(bytes);
    void* block = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& cached = free_blocks_[size];
      if (!cached.empty()) {
        block = cached.back();
        cached.pop_back();
        stats_.cached_bytes -= size;
        ++stats_.hits;
      }
    }
    if (block == nullptr) {
      if (posix_memalign(&block, kAlignment, size) != 0) throw std::bad_alloc();
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.misses;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[block] = size;
    stats_.live_bytes += size;
    return {block, block, &free_block, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &free_block; }
#if TORCH_VERSION_MAJOR >= 2
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  void release(void* block) {
    if (block == nullptr) return;
    std::unique_lock<std::mutex> lock(mutex_);
    const auto found = sizes_.find(block);
    const size_t size = found->second;
    sizes_.erase(found);
    stats_.live_bytes -= size;
    if (size < kSmallBlock || stats_.cached_bytes + size > max_cached_) {
      lock.unlock();
      std::free(block);
      return;
    }
    free_blocks_[size].push_back(block);
    stats_.cached_bytes += size;
  }

  CpuAllocatorStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  static CachingCpuAllocator* instance;

 private:
  static void free_block(void* block) { instance->release(block); }

  const size_t max_cached_;
  mutable std::mutex mutex_;
  mutable std::map<size_t, std::vector<void*>> free_blocks_;
  mutable std::unordered_map<void*, size_t> sizes_;
  mutable CpuAllocatorStats stats_;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

}  // namespace

void install_caching_cpu_allocator(size_t max_cached_bytes) {
  static std::once_flag once;
  std::call_once(once, [max_cached_bytes] {
    size_t limit = max_cached_bytes;
    if (limit == 0) {
      limit = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) *
              static_cast<size_t>(sysconf(_SC_PAGESIZE)) / 4;
    }
    // Never destroyed: tensors may be freed during static destruction.
    CachingCpuAllocator::instance = new CachingCpuAllocator(limit);
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/1);
  });
}

CpuAllocatorStats caching_cpu_allocator_stats() {
  return CachingCpuAllocator::instance ? CachingCpuAllocator::instance->stats()
                                       : CpuAllocatorStats{};
}

}  // namespace hds::trainer

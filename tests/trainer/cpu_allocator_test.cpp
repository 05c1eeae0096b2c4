// The caching CPU allocator: reuse, no aliasing of live blocks, correct data, the cache limit.
#include "cpu_allocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

namespace hds::trainer {
namespace {

constexpr size_t kCacheLimit = size_t{64} << 20;

class CachingCpuAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override { install_caching_cpu_allocator(kCacheLimit); }
};

TEST_F(CachingCpuAllocatorTest, a_freed_block_is_reused_for_the_next_tensor_of_its_size) {
  void* first = nullptr;
  {
    auto a = torch::empty({1 << 20});  // 4 MiB
    first = a.data_ptr();
  }
  const auto before = caching_cpu_allocator_stats();
  auto b = torch::empty({1 << 20});
  const auto after = caching_cpu_allocator_stats();
  EXPECT_EQ(b.data_ptr(), first);
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.misses, before.misses);
}

TEST_F(CachingCpuAllocatorTest, live_tensors_never_share_a_block_and_keep_their_values) {
  std::vector<torch::Tensor> live;
  for (int i = 0; i < 8; ++i) live.push_back(torch::full({300000}, static_cast<float>(i)));
  for (int i = 0; i < 8; ++i) {
    for (int j = i + 1; j < 8; ++j) EXPECT_NE(live[i].data_ptr(), live[j].data_ptr());
    EXPECT_TRUE(live[i].eq(static_cast<float>(i)).all().item<bool>()) << i;
  }
}

TEST_F(CachingCpuAllocatorTest, the_cache_never_holds_more_than_its_limit) {
  {
    std::vector<torch::Tensor> many;
    for (int i = 0; i < 40; ++i) many.push_back(torch::empty({1 << 20}));  // 160 MiB live
  }
  EXPECT_LE(caching_cpu_allocator_stats().cached_bytes, kCacheLimit);
}

TEST_F(CachingCpuAllocatorTest, concurrent_allocations_from_threads_stay_consistent) {
  auto work = [] {
    for (int i = 0; i < 200; ++i) {
      auto t = torch::full({50000 + (i % 7) * 1000}, 1.0f);
      ASSERT_EQ(t.sum().item<float>(), static_cast<float>(t.numel()));
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_GT(caching_cpu_allocator_stats().hits, 0u);
}

}  // namespace
}  // namespace hds::trainer

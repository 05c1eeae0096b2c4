// How many cross-validation or ablation jobs go at once: the CUDA devices a process may use
// (CUDA_VISIBLE_DEVICES) over the ranks of a job, or the cores; never fewer than one or more than
// the runs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "hds/launch/experiments.h"
#include "hds/launch/local_launch.h"

namespace hds::launch {
namespace {

// Sets CUDA_VISIBLE_DEVICES for one test and restores it after.
class VisibleDevices {
 public:
  explicit VisibleDevices(const char* list) {
    if (const char* old = getenv("CUDA_VISIBLE_DEVICES")) saved_ = old, had_ = true;
    setenv("CUDA_VISIBLE_DEVICES", list, 1);
  }
  ~VisibleDevices() {
    if (had_) {
      setenv("CUDA_VISIBLE_DEVICES", saved_.c_str(), 1);
    } else {
      unsetenv("CUDA_VISIBLE_DEVICES");
    }
  }

 private:
  std::string saved_;
  bool had_ = false;
};

TEST(ExperimentSlots, cuda_jobs_share_the_visible_devices) {
  const VisibleDevices four("0,1,2,3");
  EXPECT_EQ(default_parallel_runs("cuda", 1, 5), 4);
  EXPECT_EQ(default_parallel_runs("cuda", 2, 5), 2);
  EXPECT_EQ(default_parallel_runs("cuda:0", 1, 3), 3);  // no more than the runs
  EXPECT_EQ(default_parallel_runs("cuda", 8, 5), 1);    // a job wider than the machine: one
  const VisibleDevices none("");
  EXPECT_EQ(default_parallel_runs("cuda", 1, 5), 1);
}

TEST(ExperimentSlots, cpu_jobs_share_the_physical_cores) {
  const int cores = physical_cores();
  EXPECT_EQ(default_parallel_runs("cpu", 1, 100), std::max(1, cores));
  EXPECT_EQ(default_parallel_runs("cpu", cores + 1, 100), 1);
  EXPECT_EQ(default_parallel_runs("cpu", 1, 1), 1);
}

}  // namespace
}  // namespace hds::launch

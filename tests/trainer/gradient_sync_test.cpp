// GradientSync on the ranks of a real MPI job: ctest runs this program once alone (a world of
// one) and once under `mpirun -np 2`. The expected gradients are computed independently: every
// rank also runs each other rank's step on its own copy of the model, without any sync, and
// averages the results itself. HDS_TEST_DEVICE=cuda runs the same checks with NCCL on a GPU.
#include "hds/trainer/gradient_sync.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/trainer/losses.h"
#include "hds/trainer/model.h"
#include "hds/trainer/schedule.h"
#include "hds/trainer/step_compute.h"
#include "hds/trainer/world.h"

namespace {

using hds::trainer::GradientSync;
using hds::trainer::HdsNet;
using hds::trainer::World;

World* the_world = nullptr;

torch::Device test_device() {
  const char* name = std::getenv("HDS_TEST_DEVICE");
  return name && std::string(name) == "cuda" ? torch::Device(torch::kCUDA, the_world->local_rank())
                                             : torch::Device(torch::kCPU);
}

hds::config::Config config_with_buckets(double megabytes) {
  auto config = hds::test::tiny_config(
      "/nonexistent", {"distributed.bucket_megabytes=" + std::to_string(megabytes)});
  return config;
}

// A model of the tiny configuration, initialised the same way on every rank.
HdsNet make_model(const hds::config::Config& config) {
  torch::manual_seed(11);
  HdsNet model(config.model());
  model->to(test_device());
  model->train();
  return model;
}

// Rank `rank`'s batch: 2 patches of 128x128, different for every rank.
struct Batch {
  torch::Tensor images, masks, labels;
};
Batch batch_of(int rank) {
  torch::manual_seed(1000 + rank);
  Batch b;
  b.images = torch::randn({2, 1, 128, 128}).to(test_device());
  b.masks = torch::randint(0, 2, {2, 128, 128}, torch::kLong).to(test_device());
  b.labels = torch::tensor({0, 1}, torch::kLong).to(test_device());
  return b;
}

torch::Tensor loss_of(HdsNet& model, const hds::config::Config& config, const Batch& batch) {
  const auto output = model->forward(batch.images);
  return hds::trainer::hds_loss(output, model->heads(), batch.masks, batch.labels, config.loss(),
                                hds::trainer::seg_head_weights(config, 1),
                                hds::trainer::cls_head_weights(config, 1))
      .total;
}

// The gradients of `rank`'s loss, computed without any sync, with the model in channels-last
// layout when asked.
std::vector<torch::Tensor> local_gradients(const hds::config::Config& config, int rank,
                                           bool channels_last = false) {
  HdsNet model = make_model(config);
  hds::trainer::StepCompute compute;
  compute.channels_last = channels_last;
  hds::trainer::prepare_model(model, compute);
  loss_of(model, config, batch_of(rank)).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

// Rank 0's copy of every element of `tensors`, flattened, equals this rank's.
void expect_same_on_every_rank(const std::vector<torch::Tensor>& tensors) {
  torch::Tensor mine = torch::cat([&] {
                         std::vector<torch::Tensor> flat;
                         for (const auto& t : tensors)
                           flat.push_back(t.detach().reshape({-1}).cpu());
                         return flat;
                       }())
                           .contiguous();
  torch::Tensor roots = mine.clone();
  the_world->broadcast_bytes(roots.data_ptr(), roots.nbytes());
  EXPECT_TRUE(torch::equal(mine, roots))
      << the_world->describe() << " differs from rank 0 by up to "
      << (mine - roots).abs().max().item<float>();
}

// CPU kernels are deterministic; CUDA's convolution and pooling backward add with atomics in a
// varying order, so two backward passes over the same batch differ in the last bits there. An
// averaging error (a wrong weight, a missed or doubled bucket) is of the gradient's own size.
void expect_close(const torch::Tensor& actual, const torch::Tensor& expected,
                  const std::string& what) {
  const bool cuda = expected.is_cuda();
  const double scale = expected.abs().max().item<double>();
  const double rtol = cuda ? 1e-3 : 1e-4;
  const double atol = cuda ? 1e-3 * scale + 1e-7 : 1e-6;
  EXPECT_TRUE(torch::allclose(actual, expected, rtol, atol))
      << what << ": max difference " << (actual - expected).abs().max().item<double>()
      << " (largest expected magnitude " << scale << ")";
}

std::unique_ptr<GradientSync> make_sync(HdsNet& model, const hds::config::Config& config) {
  return GradientSync::create(*the_world, model->parameters(), config.distributed(), test_device());
}

TEST(PlanBuckets, fills_buckets_from_the_last_parameter_and_gives_big_ones_their_own) {
  const auto buckets = hds::trainer::plan_buckets({40, 10, 10, 100, 30, 30}, 64);
  const std::vector<std::vector<int>> expected{{5, 4}, {3}, {2, 1, 0}};
  // 30+30 fit in 64; 100 alone (larger than a bucket); 10+10+40 = 60 fit.
  EXPECT_EQ(buckets, expected);
  EXPECT_EQ(hds::trainer::plan_buckets({8, 8, 8}, 1 << 20),
            (std::vector<std::vector<int>>{{2, 1, 0}}));
  EXPECT_TRUE(hds::trainer::plan_buckets({}, 64).empty());
}

class GradientSyncTest : public ::testing::TestWithParam<double> {};

TEST_P(GradientSyncTest, averaged_gradients_equal_the_mean_of_the_per_rank_gradients) {
  const auto config = config_with_buckets(GetParam());
  const int world = the_world->size();
  std::vector<torch::Tensor> expected;
  for (int rank = 0; rank < world; ++rank) {
    const auto grads = local_gradients(config, rank);
    if (expected.empty()) {
      for (const auto& g : grads) expected.push_back(g / world);
    } else {
      for (size_t i = 0; i < grads.size(); ++i) expected[i] += grads[i] / world;
    }
  }

  HdsNet model = make_model(config);
  auto sync = make_sync(model, config);
  sync->begin_step(1.0 / world);
  loss_of(model, config, batch_of(the_world->rank())).backward();
  sync->finish_step();

  const auto parameters = model->parameters();
  ASSERT_EQ(parameters.size(), expected.size());
  for (size_t i = 0; i < parameters.size(); ++i) {
    expect_close(parameters[i].grad(), expected[i], "parameter " + std::to_string(i));
  }
  if (sync->bucket_count() > 1) {
    // Not a loop after backward: the buckets of the last layers started while backward ran.
    EXPECT_GT(sync->started_during_backward(), 0);
  }
}

// 2 KiB buckets: one per parameter or so; 1 GiB: one bucket for the whole model.
INSTANTIATE_TEST_SUITE_P(BucketSizes, GradientSyncTest, ::testing::Values(2.0 / 1024, 1.0, 1024.0));

TEST(GradientSync, a_rank_without_patches_contributes_nothing) {
  const auto config = config_with_buckets(1);
  const auto expected = local_gradients(config, 0);
  HdsNet model = make_model(config);
  auto sync = make_sync(model, config);
  // Rank 0 holds every patch of the step; the others have none and skip backward.
  const bool has_patches = the_world->rank() == 0;
  sync->begin_step(has_patches ? 1.0 : 0.0);
  if (has_patches) loss_of(model, config, batch_of(0)).backward();
  sync->finish_step();
  const auto parameters = model->parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    ASSERT_TRUE(parameters[i].grad().defined()) << "parameter " << i;
    expect_close(parameters[i].grad(), expected[i], "parameter " + std::to_string(i));
  }
}

TEST(GradientSync, parameters_stay_identical_across_ranks_over_sgd_steps) {
  const auto config = config_with_buckets(1);
  HdsNet model = make_model(config);
  // Start from different weights on every rank: the broadcast must make them equal.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(static_cast<float>(the_world->rank()));
  }
  auto sync = make_sync(model, config);
  std::vector<torch::Tensor> state = model->parameters();
  for (const auto& b : model->buffers()) state.push_back(b);
  {
    torch::NoGradGuard no_grad;
    sync->broadcast_from_root(state);
  }
  expect_same_on_every_rank(model->parameters());
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());

  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  for (int step = 0; step < 4; ++step) {
    sync->begin_step(1.0 / the_world->size());
    loss_of(model, config, batch_of(the_world->rank() + 10 * step)).backward();
    sync->finish_step();
    optimizer.step();
  }
  expect_same_on_every_rank(model->parameters());
  EXPECT_FALSE(torch::equal(model->parameters().front(), before.front()))
      << "training moved nothing";
}

TEST(GradientSync, gradients_are_views_into_the_buckets_and_stay_there_across_steps) {
  const auto config = config_with_buckets(1);
  HdsNet model = make_model(config);
  auto sync = make_sync(model, config);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  std::vector<const void*> first_step;
  for (int step = 0; step < 2; ++step) {
    sync->begin_step(1.0 / the_world->size());
    loss_of(model, config, batch_of(the_world->rank() + step)).backward();
    sync->finish_step();
    optimizer.step();
    std::vector<const void*> storages;
    for (const auto& p : model->parameters()) {
      const void* storage = p.grad().storage().data();
      if (std::find(storages.begin(), storages.end(), storage) == storages.end()) {
        storages.push_back(storage);
      }
      if (step == 0) first_step.push_back(p.grad().data_ptr());
    }
    // One buffer per bucket holds every gradient: nothing was copied out of them.
    EXPECT_EQ(static_cast<int>(storages.size()), sync->bucket_count()) << "step " << step;
  }
  const auto parameters = model->parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_EQ(parameters[i].grad().data_ptr(), first_step[i]) << "parameter " << i;
  }
}

TEST(GradientSync, channels_last_parameters_are_averaged_in_their_layout) {
  const auto config = config_with_buckets(1);
  const int world = the_world->size();
  std::vector<torch::Tensor> expected;
  for (int rank = 0; rank < world; ++rank) {
    const auto grads = local_gradients(config, rank, /*channels_last=*/true);
    for (size_t i = 0; i < grads.size(); ++i) {
      if (rank == 0)
        expected.push_back(grads[i] / world);
      else
        expected[i] += grads[i] / world;
    }
  }
  HdsNet model = make_model(config);
  hds::trainer::StepCompute compute;
  compute.channels_last = true;
  hds::trainer::prepare_model(model, compute);
  auto sync = make_sync(model, config);
  sync->begin_step(1.0 / world);
  loss_of(model, config, batch_of(the_world->rank())).backward();
  sync->finish_step();
  const auto parameters = model->parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& grad = parameters[i].grad();
    if (grad.dim() == 4) {
      EXPECT_TRUE(grad.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "parameter " << i;
    }
    expect_close(grad, expected[i], "parameter " + std::to_string(i));
  }
}

TEST(GradientSync, a_gradient_replaced_during_the_step_is_refused) {
  // One bucket: it would start only after backward, so no rank enters a collective.
  const auto config = config_with_buckets(1024);
  HdsNet model = make_model(config);
  auto sync = make_sync(model, config);
  sync->begin_step(1);
  model->parameters().front().mutable_grad().reset();  // as LibTorch 2's zero_grad does
  try {
    loss_of(model, config, batch_of(0)).backward();
    sync->finish_step();
    FAIL() << "a gradient outside the buckets was summed as zeros";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 0 was replaced"), std::string::npos)
        << e.what();
  }
}

TEST(GradientSync, a_backward_outside_a_step_is_refused) {
  const auto config = config_with_buckets(1);
  HdsNet model = make_model(config);
  auto sync = make_sync(model, config);
  EXPECT_THROW(loss_of(model, config, batch_of(0)).backward(), std::exception);
}

TEST(GradientSync, parameters_of_another_type_are_refused_by_name) {
  auto half = torch::zeros({3}, torch::kDouble).to(test_device()).requires_grad_();
  try {
    GradientSync::create(*the_world, {half}, hds::config::DistributedConfig(), test_device());
    FAIL() << "a double parameter was accepted";
  } catch (const hds::trainer::WorldError& e) {
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto world = World::from_environment();
  the_world = world.get();
  // Every rank prints its report (failures name the rank); any failing rank fails mpirun.
  return RUN_ALL_TESTS();
}

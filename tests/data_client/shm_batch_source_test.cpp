// The trainer's client of hds-data-service (ShmBatchSource), against a real service: batches
// equal the sampler's (in order, after a jump, across epochs) and come with the service's
// normalisation, a service configured differently
// is refused, a late service is waited for, a missing one is named, and a killed one is reported
// with its pid. No LibTorch.
#include "hds/data_client/shm_batch_source.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/patch_sampler.h"
#include "hds/test/batch_expectations.h"
#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/test/service_process.h"

namespace hds::data_client {
namespace {

using hds::test::ChildProcess;
using hds::test::expect_same_batch;
using hds::test::ServiceProcess;
using hds::test::unique_job;

// What a trainer configured as `config` asks of `service`.
ShmBatchSourceOptions client_options(const ServiceProcess& service,
                                     const hds::config::Config& config) {
  ShmBatchSourceOptions options;
  options.socket_path = service.socket();
  options.job_id = service.job();
  options.timeout_seconds = 2;
  options.patch_rows = config.data().patch_rows();
  options.patch_cols = config.data().patch_cols();
  options.batch_size = config.train().batch_size();
  return options;
}

TEST(ShmBatchSource, gives_the_in_process_batches_in_order_and_after_a_jump) {
  const auto dir = hds::test::scratch_dir("shm-source");
  const auto config = hds::test::tiny_config(dir);
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();

  const auto dataset = hds::data::load_dataset(config.data());
  hds::data::PatchSampler local(dataset.train, hds::data::sampler_options_for(config));
  ShmBatchSource remote(client_options(service, config));
  ASSERT_EQ(remote.steps_per_epoch(), local.steps_per_epoch());
  // The service announces its training split's normalisation: what a rank validates and
  // exports with, without loading those films.
  ASSERT_TRUE(remote.normalisation().has_value());
  EXPECT_EQ(remote.normalisation()->mean, dataset.mean);
  EXPECT_EQ(remote.normalisation()->std, dataset.std);
  for (int epoch = 1; epoch <= 2; ++epoch) {
    for (int step = 0; step < local.steps_per_epoch(); ++step) {
      expect_same_batch(remote.batch(epoch, step), local.batch(epoch, step),
                        "epoch " + std::to_string(epoch) + " step " + std::to_string(step));
    }
  }
  // A resume in mid-epoch: the client restarts the service's stream there.
  expect_same_batch(remote.batch(5, 1), local.batch(5, 1), "epoch 5 step 1");
  expect_same_batch(remote.batch(6, 0), local.batch(6, 0), "epoch 6 step 0");
}

TEST(ShmBatchSource, refuses_a_service_serving_other_patches) {
  const auto dir = hds::test::scratch_dir("shm-source-mismatch");
  const auto config = hds::test::tiny_config(dir);
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  ShmBatchSourceOptions options = client_options(service, config);
  options.patch_rows = 256;
  try {
    ShmBatchSource source(options);
    FAIL() << "a service serving 128-row patches was accepted for 256";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what())
                  .find("patch rows (data.patch_rows) 128 but this "
                        "trainer's configuration says 256"),
              std::string::npos)
        << error.what();
  }
}

TEST(ShmBatchSource, waits_for_a_service_that_starts_after_the_trainer) {
  const auto dir = hds::test::scratch_dir("shm-source-late");
  const auto config = hds::test::tiny_config(dir);
  ShmBatchSourceOptions options;
  options.socket_path = ServiceProcess::socket_in(dir);
  options.job_id = unique_job("late");
  options.timeout_seconds = 60;
  options.patch_rows = config.data().patch_rows();
  options.patch_cols = config.data().patch_cols();
  options.batch_size = config.train().batch_size();
  // The trainer connects first, as ranks started beside the service on a Slurm node may.
  auto first_batch = std::async(std::launch::async, [&] {
    ShmBatchSource source(options);
    return source.batch(1, 0).count;
  });
  EXPECT_EQ(first_batch.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  ServiceProcess service(config, dir, options.job_id);
  ASSERT_TRUE(service.ready()) << service.process().output();
  EXPECT_EQ(first_batch.get(), config.train().batch_size());
}

TEST(ShmBatchSource, names_the_socket_when_no_service_appears_in_time) {
  const auto dir = hds::test::scratch_dir("shm-source-absent");
  ShmBatchSourceOptions options;
  options.socket_path = ServiceProcess::socket_in(dir);
  options.job_id = unique_job("absent");
  options.timeout_seconds = 0.5;
  try {
    ShmBatchSource source(options);
    FAIL() << "connected to a service that does not exist";
  } catch (const hds::transport::ControlError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(options.socket_path), std::string::npos) << message;
    EXPECT_NE(message.find("waited 0.5"), std::string::npos) << message;
  }
}

TEST(ShmBatchSource, reports_a_killed_service_naming_its_pid) {
  const auto dir = hds::test::scratch_dir("shm-source-killed");
  const auto config = hds::test::tiny_config(dir);
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  ShmBatchSource source(client_options(service, config));
  source.batch(1, 0);
  service.process().kill_and_reap();
  try {
    for (int epoch = 1; epoch < 10; ++epoch) {
      for (int step = epoch == 1 ? 1 : 0; step < source.steps_per_epoch(); ++step) {
        source.batch(epoch, step);
      }
    }
    FAIL() << "batches kept coming from a killed service";
  } catch (const hds::transport::RingPeerError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("data service (pid " + std::to_string(service.process().pid()) + ")"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace hds::data_client

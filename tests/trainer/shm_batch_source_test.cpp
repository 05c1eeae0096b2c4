// The trainer's client of hds-data-service: batches equal the in-process source's (in order, after
// a jump, across epochs), a service configured differently is refused, a killed service is
// reported, and fit() through the service trains exactly as fit() in process.
#include "hds/trainer/shm_batch_source.h"

#include <gtest/gtest.h>

#include <future>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../data/batch_expectations.h"
#include "../data/process_helpers.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/training.h"
#include "test_support.h"

namespace hds::trainer {
namespace {

namespace fs = std::filesystem;
using hds::data::testing::ChildProcess;
using hds::data::testing::expect_same_batch;

std::string unique_job(const std::string& what) {
  static int counter = 0;
  return what + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// `hds-data-service serve` on `config` (written out in full), with its socket in `dir`.
class ServiceProcess {
 public:
  // `job` "" picks a fresh job id.
  ServiceProcess(const hds::config::Config& config, const std::string& dir,
                 const std::string& job = "")
      : job_(job.empty() ? unique_job("trainer") : job),
        socket_(socket_in(dir)) {
    const std::string config_file = (fs::path(dir) / "service.pbtxt").string();
    std::ofstream(config_file) << hds::config::to_text(config);
    process_ = std::make_unique<ChildProcess>(
        HDS_DATA_SERVICE_BINARY, std::vector<std::string>{"serve", "--config", config_file,
                                                          "--socket", socket_, "--job-id", job_});
    ready_ = process_->wait_for_output("ready: socket " + socket_, 60);
  }
  // Stops the service as a launcher would: SIGTERM, after which nothing of it is left.
  ~ServiceProcess() {
    process_->signal(SIGTERM);
    process_->wait_exit(10);
  }
  static std::string socket_in(const std::string& dir) {
    return (fs::path(dir) / "run" / "data.sock").string();
  }
  bool ready() const { return ready_; }
  const std::string& job() const { return job_; }
  const std::string& socket() const { return socket_; }
  ChildProcess& process() { return *process_; }

  ShmBatchSourceOptions client_options(const hds::config::Config& config) const {
    ShmBatchSourceOptions options;
    options.socket_path = socket_;
    options.job_id = job_;
    options.timeout_seconds = 2;
    options.patch_rows = config.data().patch_rows();
    options.patch_cols = config.data().patch_cols();
    options.batch_size = config.train().batch_size();
    return options;
  }

 private:
  std::string job_;
  std::string socket_;
  std::unique_ptr<ChildProcess> process_;
  bool ready_ = false;
};

TEST(ShmBatchSource, gives_the_in_process_batches_in_order_and_after_a_jump) {
  const auto dir = hds::test::scratch_dir("shm-source");
  const auto config = hds::test::tiny_config(dir);
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();

  const auto dataset = hds::data::load_dataset(config.data());
  InProcessBatchSource local(dataset.train, hds::data::sampler_options_for(config));
  ShmBatchSource remote(service.client_options(config));
  ASSERT_EQ(remote.steps_per_epoch(), local.steps_per_epoch());
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
  ShmBatchSourceOptions options = service.client_options(config);
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
  } catch (const hds::data::ControlError& error) {
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
  ShmBatchSource source(service.client_options(config));
  source.batch(1, 0);
  service.process().kill_and_reap();
  try {
    for (int epoch = 1; epoch < 10; ++epoch) {
      for (int step = epoch == 1 ? 1 : 0; step < source.steps_per_epoch(); ++step) {
        source.batch(epoch, step);
      }
    }
    FAIL() << "batches kept coming from a killed service";
  } catch (const hds::data::RingPeerError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("data service (pid " + std::to_string(service.process().pid()) + ")"),
              std::string::npos)
        << error.what();
  }
}

TEST(ShmBatchSource, fit_checkpoints_the_steps_done_when_the_service_dies) {
  const auto dir = hds::test::scratch_dir("fit-service-dies");
  const auto config = hds::test::tiny_config(dir, {"train.epochs=50"});
  ServiceProcess service(config, dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  auto remote = hds::test::tiny_config(
      dir, {"train.epochs=50", "data.service_socket=" + service.socket(),
            "data.service_job_id=" + service.job(), "data.service_timeout_seconds=2"});
  std::ostringstream log;
  FitOptions options;
  options.log = &log;
  // After three steps the service is killed; the batches already in the ring still train.
  int64_t last_step = 0;
  options.on_step = [&](const hds::trainer::StepReport& report) {
    last_step = report.global_step;
    if (report.global_step == 3) service.process().kill_and_reap();
  };
  EXPECT_THROW(fit(remote, options), hds::data::RingPeerError) << log.str();
  ASSERT_GE(last_step, 3);
  // The checkpoint holds every step done: resuming from it loses nothing (2 steps an epoch).
  const auto meta =
      hds::trainer::read_checkpoint_meta((fs::path(dir) / "checkpoints" / "latest").string());
  EXPECT_EQ(meta.global_step(), last_step) << log.str();
  EXPECT_EQ(meta.completed_epochs(), last_step / 2);
  EXPECT_EQ(meta.step_in_epoch(), last_step % 2);
  EXPECT_NE(log.str().find("data source failed"), std::string::npos) << log.str();
}

TEST(ShmBatchSource, fit_through_the_service_trains_exactly_as_in_process) {
  const auto local_dir = hds::test::scratch_dir("fit-local");
  const auto remote_dir = hds::test::scratch_dir("fit-remote");
  const auto local_config = hds::test::tiny_config(local_dir, {"train.epochs=3"});
  ServiceProcess service(local_config, remote_dir);
  ASSERT_TRUE(service.ready()) << service.process().output();
  const auto remote_config = hds::test::tiny_config(
      remote_dir, {"train.epochs=3", "data.service_socket=" + service.socket(),
                   "data.service_job_id=" + service.job()});

  std::ostringstream log;
  FitOptions options;
  options.log = &log;
  const FitResult local = fit(local_config, options);
  const FitResult remote = fit(remote_config, options);
  ASSERT_TRUE(local.finished && remote.finished);
  EXPECT_EQ(remote.global_step, local.global_step);
  EXPECT_EQ(remote.last_loss, local.last_loss);  // bit for bit: the same patches, in order
  EXPECT_EQ(remote.best_dice.dice(), local.best_dice.dice());
}

}  // namespace
}  // namespace hds::trainer

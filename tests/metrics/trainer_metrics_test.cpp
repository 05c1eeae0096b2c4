// TrainerMetrics served for real: steps recorded, /metrics fetched over a TCP socket, names,
// labels and values checked, and the text checked by `promtool check metrics` where installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <thread>

#include "hds/monitoring/metrics_endpoint.h"
#include "hds/test/prometheus.h"
#include "hds/trainer/metrics.h"

namespace {

namespace fs = std::filesystem;
using hds::test::free_ports;
using hds::test::http_get;
using hds::test::parse_exposition;
using hds::test::value_of;
using hds::trainer::RankIdentity;
using hds::trainer::TrainerMetrics;

hds::config::MonitoringConfig monitoring_on(int port) {
  hds::config::MonitoringConfig monitoring;
  monitoring.set_metrics_port(port);
  return monitoring;
}

// A step of a model with heads 3 and 5 (weights indexed by head 0..5).
hds::trainer::StepReport step(int64_t global_step, double loss) {
  hds::trainer::StepReport report;
  report.epoch = 2;
  report.step = 1;
  report.steps_per_epoch = 4;
  report.global_step = global_step;
  report.patches = 4;
  report.loss = loss;
  report.heads = {3, 5};
  report.seg = {0.5, 0.25};
  report.cls = {0.125, 0.0625};
  report.learning_rate = 0.01;
  report.seg_weights = {3.5, 3.0, 2.5, 2.0, 1.5, 1.0};
  report.cls_weights = {0, 0, 0, 0.5, 0, 0.75};
  report.seconds = 0.5;
  report.data_wait_seconds = 0.125;
  report.sync_wait_seconds = 0.0625;
  report.gradient_norm = 2.5 * loss;
  return report;
}

std::string scrape(const TrainerMetrics& metrics, int port) {
  const auto response = http_get(port, "/metrics");
  EXPECT_EQ(response.status, 200) << metrics.url();
  return response.body;
}

TEST(TrainerMetrics, serves_what_the_steps_recorded_with_the_rank_labels) {
  const int port = free_ports();
  TrainerMetrics metrics(monitoring_on(port), RankIdentity{0, 0, 2});
  EXPECT_EQ(metrics.url(), "http://127.0.0.1:" + std::to_string(port) + "/metrics");
  metrics.on_step(step(11, 2.0));
  metrics.on_step(step(12, 1.5));
  const std::string text = scrape(metrics, port);
  const auto samples = parse_exposition(text);
  const std::map<std::string, std::string> rank{{"rank", "0"}, {"local_rank", "0"}};
  EXPECT_EQ(value_of(samples, "hds_train_steps_total", rank), 2) << text;
  EXPECT_EQ(value_of(samples, "hds_train_patches_total", rank), 8) << text;
  EXPECT_EQ(value_of(samples, "hds_train_global_step", rank), 12) << text;
  EXPECT_EQ(value_of(samples, "hds_train_epoch", rank), 2) << text;
  EXPECT_EQ(value_of(samples, "hds_train_weighted_loss", rank), 1.5) << text;
  EXPECT_EQ(value_of(samples, "hds_train_learning_rate", rank), 0.01) << text;
  EXPECT_EQ(value_of(samples, "hds_train_gradient_norm", rank), 2.5 * 1.5) << text;
  EXPECT_EQ(value_of(samples, "hds_train_patches_per_second", rank), 8) << text;
  EXPECT_EQ(value_of(samples, "hds_train_world_size", rank), 2) << text;
  EXPECT_EQ(value_of(samples, "hds_train_loss", {{"head", "3"}, {"term", "seg"}}), 0.5) << text;
  EXPECT_EQ(value_of(samples, "hds_train_loss", {{"head", "5"}, {"term", "cls"}}), 0.0625) << text;
  EXPECT_EQ(value_of(samples, "hds_train_head_weight", {{"head", "5"}, {"term", "seg"}}), 1.0)
      << text;
  EXPECT_EQ(value_of(samples, "hds_train_head_weight", {{"head", "3"}, {"term", "cls"}}), 0.5)
      << text;
  // Only built heads have series.
  EXPECT_FALSE(value_of(samples, "hds_train_loss", {{"head", "0"}}).has_value()) << text;
  EXPECT_EQ(value_of(samples, "hds_train_step_seconds_count", rank), 2) << text;
  EXPECT_EQ(value_of(samples, "hds_train_step_seconds_sum", rank), 1.0) << text;
  EXPECT_EQ(value_of(samples, "hds_train_step_seconds_bucket", {{"le", "0.5"}}), 2) << text;
  EXPECT_EQ(value_of(samples, "hds_train_step_seconds_bucket", {{"le", "0.25"}}), 0) << text;
  EXPECT_EQ(value_of(samples, "hds_train_data_wait_seconds_sum", rank), 0.25) << text;
  EXPECT_EQ(value_of(samples, "hds_train_gradient_sync_seconds_sum", rank), 0.125) << text;
  const auto last_step = value_of(samples, "hds_train_last_step_timestamp_seconds", rank);
  ASSERT_TRUE(last_step.has_value()) << text;
  EXPECT_NEAR(*last_step, static_cast<double>(std::time(nullptr)), 60) << text;
  EXPECT_GT(value_of(samples, "hds_process_resident_memory_bytes", rank).value_or(0), 1 << 20)
      << text;
  // Ours all carry the rank (prometheus-cpp adds exposer_* series of its own).
  for (const auto& sample : samples) {
    if (sample.name.rfind("hds_", 0) != 0) continue;
    EXPECT_EQ(sample.labels.count("rank"), 1u) << sample.name << " has no rank label";
  }
}

TEST(TrainerMetrics, rank_0_alone_reports_validation_and_checkpoints) {
  const int port = free_ports(2);
  TrainerMetrics root(monitoring_on(port), RankIdentity{0, 0, 2});
  // The second rank of the node serves on the next port.
  TrainerMetrics other(monitoring_on(port), RankIdentity{1, 1, 2});
  EXPECT_EQ(other.url(), "http://127.0.0.1:" + std::to_string(port + 1) + "/metrics");
  hds::checkpoint::ValidationResult validation;
  validation.set_epoch(10);
  validation.set_dice(0.75);
  validation.set_accuracy(0.5);
  validation.set_auc(0.625);
  hds::checkpoint::ValidationResult best = validation;
  best.set_epoch(8);
  best.set_dice(0.875);
  for (TrainerMetrics* metrics : {&root, &other}) {
    metrics->on_validation(validation, best);
    metrics->on_checkpoint(0.2);
  }
  const auto root_samples = parse_exposition(scrape(root, port));
  EXPECT_EQ(value_of(root_samples, "hds_validation_epoch"), 10);
  EXPECT_EQ(value_of(root_samples, "hds_validation_dice"), 0.75);
  EXPECT_EQ(value_of(root_samples, "hds_validation_accuracy"), 0.5);
  EXPECT_EQ(value_of(root_samples, "hds_validation_auc"), 0.625);
  EXPECT_EQ(value_of(root_samples, "hds_validation_best_dice"), 0.875);
  EXPECT_EQ(value_of(root_samples, "hds_checkpoint_seconds_count"), 1);
  const std::string other_text = scrape(other, port + 1);
  const auto other_samples = parse_exposition(other_text);
  EXPECT_EQ(value_of(other_samples, "hds_train_steps_total", {{"rank", "1"}, {"local_rank", "1"}}),
            0)
      << other_text;
  EXPECT_EQ(other_text.find("hds_validation"), std::string::npos) << other_text;
  EXPECT_EQ(other_text.find("hds_checkpoint"), std::string::npos) << other_text;
}

TEST(TrainerMetrics, before_the_first_step_the_last_step_time_is_the_start) {
  const int port = free_ports();
  const double before = static_cast<double>(std::time(nullptr));
  TrainerMetrics metrics(monitoring_on(port), RankIdentity{0, 0, 1});
  const auto samples = parse_exposition(scrape(metrics, port));
  const double start = value_of(samples, "hds_train_last_step_timestamp_seconds").value_or(0);
  EXPECT_GE(start, before);
  EXPECT_LE(start, static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_EQ(value_of(samples, "hds_train_steps_total"), 0);
  // A CPU rank has no device memory series.
  EXPECT_FALSE(value_of(samples, "hds_train_device_memory_allocated_bytes").has_value());
}

TEST(TrainerMetrics, device_memory_and_a_non_finite_loss_are_exported) {
  const int port = free_ports();
  TrainerMetrics metrics(monitoring_on(port), RankIdentity{0, 0, 1});
  hds::trainer::StepReport cuda_step = step(1, 2.0);
  cuda_step.device_allocated_bytes = 3 << 20;
  cuda_step.device_reserved_bytes = 5 << 20;
  metrics.on_step(cuda_step);
  metrics.on_nonfinite_loss(std::numeric_limits<double>::quiet_NaN());
  const std::string text = scrape(metrics, port);
  const auto samples = parse_exposition(text);
  EXPECT_EQ(value_of(samples, "hds_train_device_memory_allocated_bytes"), 3 << 20) << text;
  EXPECT_EQ(value_of(samples, "hds_train_device_memory_reserved_bytes"), 5 << 20) << text;
  EXPECT_TRUE(std::isnan(value_of(samples, "hds_train_weighted_loss").value_or(0))) << text;
  EXPECT_GE(value_of(samples, "hds_process_cpu_seconds_total").value_or(-1), 0) << text;
}

// With monitoring.linger_seconds the endpoint stays until the next scrape (and no longer).
TEST(TrainerMetrics, lingers_until_one_more_scrape) {
  const int port = free_ports();
  hds::config::MonitoringConfig monitoring = monitoring_on(port);
  monitoring.set_linger_seconds(30);
  auto metrics = std::make_unique<TrainerMetrics>(monitoring, RankIdentity{0, 0, 1});
  metrics->on_step(step(7, 1.0));
  std::string final_text;
  std::thread scraper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    final_text = http_get(port, "/metrics").body;
  });
  const auto start = std::chrono::steady_clock::now();
  metrics.reset();  // waits for the scraper's request
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  scraper.join();
  EXPECT_GE(waited, 0.4);
  EXPECT_LT(waited, 10);
  EXPECT_EQ(value_of(parse_exposition(final_text), "hds_train_global_step"), 7) << final_text;
}

TEST(TrainerMetrics, a_taken_port_is_an_error_naming_the_address_and_the_field) {
  const int port = free_ports();
  const int holder = hds::test::bind_loopback(port);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(listen(holder, 1), 0);
  try {
    TrainerMetrics metrics(monitoring_on(port), RankIdentity{});
    FAIL() << "served on a taken port";
  } catch (const hds::monitoring::MetricsError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
    EXPECT_NE(message.find("monitoring.metrics_port"), std::string::npos) << message;
  }
  close(holder);
}

TEST(TrainerMetrics, a_local_rank_past_the_last_port_is_an_error) {
  try {
    TrainerMetrics metrics(monitoring_on(65535), RankIdentity{1, 1, 2});
    FAIL() << "served past port 65535";
  } catch (const hds::monitoring::MetricsError& error) {
    EXPECT_NE(std::string(error.what()).find("65536"), std::string::npos) << error.what();
  }
}

TEST(TrainerMetrics, promtool_accepts_the_exposition) {
  const std::string promtool = hds::test::find_program("promtool");
  if (promtool.empty()) {
    GTEST_SKIP()
        << "promtool not installed (Debian package prometheus; deploy/setup.sh installs it)";
  }
  const int port = free_ports();
  TrainerMetrics metrics(monitoring_on(port), RankIdentity{0, 0, 1});
  metrics.on_step(step(1, 2.0));
  hds::checkpoint::ValidationResult validation;
  validation.set_epoch(1);
  metrics.on_validation(validation, validation);
  metrics.on_checkpoint(0.5);
  const fs::path dir = fs::temp_directory_path() / "hds-test-promtool";
  fs::create_directories(dir);
  std::ofstream(dir / "metrics.txt") << scrape(metrics, port);
  const std::string command = promtool + " check metrics < " + (dir / "metrics.txt").string() +
                              " > " + (dir / "promtool.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream report(dir / "promtool.txt");
  const std::string problems((std::istreambuf_iterator<char>(report)), {});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << problems;
  EXPECT_EQ(problems, "") << problems;
}

}  // namespace

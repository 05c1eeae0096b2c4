// A real Prometheus server scrapes both ranks of `mpirun -np 2 hds-trainer fit`: every rank
// exports its own metrics on metrics_port + local rank, told apart by the rank label.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hds/config/config.h"
#include "hds/test/child_process.h"
#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/test/prometheus.h"

namespace {

namespace fs = std::filesystem;
using hds::test::ChildProcess;
using hds::test::free_ports;
using hds::test::http_get;

// Ends a child at the end of the test, also when an assertion failed: mpirun forwards SIGTERM to
// its ranks (a SIGKILL to mpirun alone would leave them running).
struct StopOnExit {
  ChildProcess& child;
  int signal_number;
  ~StopOnExit() {
    child.signal(signal_number);
    if (!child.wait_exit(60)) child.kill_and_reap();
  }
};

// The ranks whose hds_train_steps_total Prometheus has with a value above 0, by rank label;
// `answer` keeps the last reply.
std::set<std::string> ranks_with_steps(int prometheus_port, std::string& answer) {
  const auto response = http_get(prometheus_port, "/api/v1/query?query=hds_train_steps_total");
  answer = response.body;
  std::set<std::string> ranks;
  if (response.status != 200) return ranks;
  const auto reply = nlohmann::json::parse(response.body, nullptr, false);
  if (reply.is_discarded() || reply.value("status", "") != "success") return ranks;
  for (const auto& series : reply["data"]["result"]) {
    const auto& labels = series["metric"];
    // Both ranks run on this node: local rank = rank; the scrape job names the target.
    if (labels.value("local_rank", "?") != labels.value("rank", "!")) continue;
    if (labels.value("job", "") != "hds-trainer") continue;
    if (std::stod(series["value"][1].get<std::string>()) > 0)
      ranks.insert(labels.value("rank", ""));
  }
  return ranks;
}

TEST(PrometheusScrape, scrapes_both_ranks_of_a_two_rank_job) {
  const std::string prometheus = hds::test::find_program("prometheus");
  if (prometheus.empty()) {
    GTEST_SKIP() << "the prometheus server is not installed (Debian package prometheus; "
                    "deploy/setup.sh installs it)";
  }
  const auto dir = hds::test::scratch_dir("prometheus-scrape");
  const int metrics_port = free_ports(2);
  const int prometheus_port = free_ports();
  ASSERT_GT(metrics_port, 0);
  ASSERT_GT(prometheus_port, 0);

  // Far more epochs than the test waits for; no validation or periodic checkpoints on the way.
  const std::string config = dir + "/job.pbtxt";
  std::ofstream(config) << hds::config::to_text(hds::test::tiny_config(
      dir + "/run", {"train.epochs=100000", "train.batch_size=2", "train.validate_from=100000",
                     "train.checkpoint_every=100000", "train.log_every_steps=100000",
                     "monitoring.metrics_port=" + std::to_string(metrics_port)}));
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 1);
  ChildProcess job(HDS_MPIRUN,
                   {"--oversubscribe", "-np", "2", HDS_TRAINER_BINARY, "fit", "--config", config});
  StopOnExit stop_job{job, SIGUSR1};  // the ranks agree on a step, checkpoint and exit 75
  const std::string where = "metrics: http://127.0.0.1:" + std::to_string(metrics_port) +
                            "/metrics (local ranks 0-1: ports " + std::to_string(metrics_port) +
                            "-" + std::to_string(metrics_port + 1) + ")";
  ASSERT_TRUE(job.wait_for_output(where, 120)) << job.output();

  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: hds-trainer\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << metrics_port << "', '127.0.0.1:" << metrics_port + 1
      << "']\n";
  ChildProcess server(
      prometheus,
      {"--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/tsdb",
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"});
  StopOnExit stop_server{server, SIGTERM};

  // The first samples appear a few seconds after Prometheus starts (1 s scrape interval).
  std::string answer;
  std::set<std::string> ranks;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    ranks = ranks_with_steps(prometheus_port, answer);
    if (ranks.size() == 2) break;
    job.wait_for_output("\n\n(never printed)", 0.5);  // keeps the trainers' output pipe drained
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1"}))
      << "Prometheus's last answer: " << answer << "\ntrainer output:\n"
      << job.output() << "\nprometheus output:\n"
      << server.output();

  job.signal(SIGUSR1);
  const auto status = job.wait_exit(120);
  ASSERT_TRUE(status.has_value()) << job.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 75) << job.output();
}

}  // namespace

// The monitoring stack against the real thing: Debian's Prometheus on loopback with our
// deploy/prometheus config, alert rules and console page (scrape and rule intervals shortened),
// fed only by the file-SD targets of real two-rank `hds-launch local` jobs. Checked through the
// HTTP API: the step counter of every rank reaches the job's final step, loss series exist for
// all six heads and both terms, the data service's series exist, every query of the Grafana
// dashboard returns data, and a job whose data service is slowed (stopped 80 % of the time)
// fires HdsDataStarvation. Headless Chromium renders the console page, whose loss graph must be
// drawn.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hds/common/exit_codes.h"
#include "hds/test/child_process.h"
#include "hds/test/prometheus.h"
#include "hds/test/screenshot.h"
#include "launch_test_support.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h
using hds::test::ChildProcess;
using hds::test::free_ports;
using hds::test::http_get;
using nlohmann::json;

// Bounds on waits on a loaded 2-core machine; none is a timing assertion.
constexpr double kJobSeconds = 180;
constexpr double kSeriesSeconds = 90;
const std::string kProgress = R"(epoch \d+/\d+ step \d+/\d+)";

// Replaces every `from` in `text` by `to`; fails the test when there is none (the file changed
// and the test would silently stop rescaling it).
std::string replace_all(std::string text, const std::string& from, const std::string& to,
                        const std::string& file) {
  size_t count = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    ++count;
  }
  EXPECT_GT(count, 0u) << file << " no longer holds \"" << from << "\"";
  return text;
}

std::string url_encoded(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string encoded;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

// Polls `condition` every half second for up to `seconds` (Prometheus answers are not free).
template <class Condition>
bool within(double seconds, Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return true;
}

class MonitoringStack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = why_jobs_cannot_run()) GTEST_SKIP() << *why;
    prometheus_ = hds::test::find_program("prometheus");
    if (prometheus_.empty()) {
      GTEST_SKIP() << "the prometheus server is not installed (Debian package prometheus; "
                      "deploy/setup.sh installs it)";
    }
    dir_ = scratch_dir(std::string("monitoring-") +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    // The repository's layout: prometheus.yml finds ../../runs/prometheus-targets/*.json.
    const fs::path deploy = fs::path(dir_) / "deploy" / "prometheus";
    fs::create_directories(deploy.parent_path());
    fs::copy(fs::path(HDS_SOURCE_DIR) / "deploy" / "prometheus", deploy,
             fs::copy_options::recursive);
    targets_dir_ = dir_ + "/runs/prometheus-targets";
    // Before Prometheus starts: it watches the folder only if it exists then.
    fs::create_directories(targets_dir_);
    const std::string config = (deploy / "prometheus.yml").string();
    std::string text = read_text(config);
    text = replace_all(text, "scrape_interval: 15s", "scrape_interval: 1s", config);
    text = replace_all(text, "evaluation_interval: 15s", "evaluation_interval: 1s", config);
    text = replace_all(text, "refresh_interval: 30s", "refresh_interval: 1s", config);
    write_text(config, text);
    // The starvation alert's 5-minute window and wait, at test speed.
    const std::string rules = (deploy / "alerts.yml").string();
    text = read_text(rules);
    text = replace_all(text, "[5m]", "[20s]", rules);
    text = replace_all(text, "for: 5m", "for: 5s", rules);
    write_text(rules, text);

    port_ = free_ports();
    ASSERT_GT(port_, 0);
    server_ = std::make_unique<ChildProcess>(
        prometheus_, std::vector<std::string>{
                         "--config.file=" + config, "--storage.tsdb.path=" + dir_ + "/tsdb",
                         "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                         "--web.console.templates=" + (deploy / "consoles").string(),
                         "--web.console.libraries=" + (deploy / "console_libraries").string(),
                         "--log.level=warn"});
    ASSERT_TRUE(within(30, [&] { return http_get(port_, "/-/ready").status == 200; }))
        << server_->output();
  }

  void TearDown() override {
    if (server_) {
      server_->signal(SIGTERM);
      if (!server_->wait_exit(30)) server_->kill_and_reap();
    }
  }

  // The result list of an instant query (empty when it fails); `answer` keeps the reply.
  json query(const std::string& expression, std::string* answer = nullptr) const {
    const auto response = http_get(port_, "/api/v1/query?query=" + url_encoded(expression));
    if (answer) *answer = response.body;
    const json reply = json::parse(response.body, nullptr, false);
    if (response.status != 200 || reply.is_discarded() || reply.value("status", "") != "success")
      return json::array();
    return reply["data"]["result"];
  }

  // A tiny two-rank job that exports metrics to Prometheus through its targets file, validating
  // every 5 epochs; `name` names its folder and job id.
  Command launch(const std::string& name) {
    const std::string dir = dir_ + "/" + name;
    fs::create_directories(dir);
    write_tiny_job(dir, 100000);
    job_dirs_[name] = dir;
    const int ports = free_ports(3);  // ranks 0 and 1, then the data service (offset 2)
    EXPECT_GT(ports, 0);
    const std::string job = name + "-" + std::to_string(getpid());
    std::vector<std::string> argv = {launch_binary(), "local", "--config", dir + "/job.pbtxt",
                                     "--np",          "2",     "--job-id", job};
    for (const std::string& assignment :
         {"monitoring.metrics_port=" + std::to_string(ports),
          std::string("monitoring.data_service_port_offset=2"),
          "monitoring.targets_dir=" + targets_dir_, std::string("monitoring.linger_seconds=10"),
          std::string("train.validate_from=2"), std::string("train.validate_every=5")}) {
      argv.insert(argv.end(), {"--set", assignment});
    }
    first_port_[job] = ports;
    return Command(argv, dir + "/launch.log");
  }

  std::string prometheus_;
  std::string dir_;
  std::string targets_dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> server_;
  std::map<std::string, std::string> job_dirs_;
  std::map<std::string, int> first_port_;
};

TEST_F(MonitoringStack, scrapes_every_process_of_a_two_rank_job_and_its_dashboards_have_data) {
  Command run = launch("healthy");
  const std::string job = "healthy-" + std::to_string(getpid());
  const int port = first_port_[job];
  ASSERT_TRUE(run.wait_for_output(kProgress, kJobSeconds)) << run.output();

  // The targets file names the three processes with their labels.
  const std::string targets_file = targets_dir_ + "/" + job + ".json";
  ASSERT_TRUE(fs::exists(targets_file)) << run.output();
  std::map<std::string, json> by_address;
  for (const json& group : json::parse(read_text(targets_file))) {
    by_address[group["targets"][0].get<std::string>()] = group["labels"];
  }
  const std::string host = "127.0.0.1:";
  ASSERT_EQ(by_address.size(), 3u) << read_text(targets_file);
  EXPECT_EQ(by_address[host + std::to_string(port)]["rank"], "0");
  EXPECT_EQ(by_address[host + std::to_string(port + 1)]["rank"], "1");
  EXPECT_EQ(by_address[host + std::to_string(port + 2)]["role"], "data_service");
  EXPECT_EQ(by_address[host + std::to_string(port)]["hds_job"], job);
  char node[256] = {};
  gethostname(node, sizeof node - 1);
  EXPECT_EQ(by_address[host + std::to_string(port)]["node"],
            std::string(node).substr(0, std::string(node).find('.')));

  const std::string selector = "{hds_job=\"" + job + "\"}";
  std::string answer;
  EXPECT_TRUE(within(kSeriesSeconds,
                     [&] {
                       const json up = query("up" + selector + " == 1", &answer);
                       return up.size() == 3;
                     }))
      << answer << server_->output();

  // Every query of the Grafana dashboard (the CPU ones) returns data while the job runs.
  std::vector<std::string> expressions;
  {
    const std::string command =
        "python3 " + std::string(HDS_SOURCE_DIR) + "/tests/deploy/dashboard_queries.py --cpu-only";
    std::FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    char line[4096];
    while (std::fgets(line, sizeof line, pipe)) {
      std::string expression(line);
      while (!expression.empty() && expression.back() == '\n') expression.pop_back();
      if (!expression.empty()) expressions.push_back(expression);
    }
    ASSERT_EQ(pclose(pipe), 0) << command;
  }
  ASSERT_GE(expressions.size(), 10u);
  for (const std::string& expression : expressions) {
    EXPECT_TRUE(within(kSeriesSeconds, [&] { return !query(expression, &answer).empty(); }))
        << "the dashboard query " << expression << " returns nothing: " << answer;
  }

  // Loss series for all six heads and both terms, on both ranks.
  std::set<std::string> losses;
  for (const json& series : query("hds_train_loss" + selector)) {
    const json& labels = series["metric"];
    losses.insert(labels.value("rank", "?") + "/" + labels.value("head", "?") + "/" +
                  labels.value("term", "?"));
  }
  EXPECT_EQ(losses.size(), 2u * 6u * 2u) << json(losses).dump();
  // The data service's series: batches produced, one ring per rank.
  const json batches = query("hds_data_batches_total" + selector);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_GT(std::stod(batches[0]["value"][1].get<std::string>()), 0);
  std::set<std::string> rings;
  for (const json& series : query("hds_data_ring_slots" + selector)) {
    rings.insert(series["metric"].value("rank", "?"));
  }
  EXPECT_EQ(rings, (std::set<std::string>{"0", "1"}));

  // The console page, served by this Prometheus, draws the loss graph (Rickshaw's SVG path).
  const std::string browser = hds::test::chromium();
  if (!browser.empty()) {
    const std::string dom_file = dir_ + "/console.html";
    const std::string command = "timeout 120 " + browser +
                                " --headless --no-sandbox --disable-gpu --virtual-time-budget=15000"
                                " --dump-dom 'http://127.0.0.1:" +
                                std::to_string(port_) + "/consoles/hds.html?hds_job=" + job +
                                "' > " + dom_file + " 2> " + dir_ + "/chromium.log";
    ASSERT_EQ(std::system(command.c_str()), 0) << read_text(dir_ + "/chromium.log");
    const std::string dom = read_text(dom_file);
    const size_t graph = dom.find("id=\"loss-total\"");
    ASSERT_NE(graph, std::string::npos) << dom.substr(0, 2000);
    const size_t next_graph = dom.find("id=\"lr\"", graph);
    const std::string loss_graph = dom.substr(graph, next_graph - graph);
    EXPECT_NE(loss_graph.find("<svg"), std::string::npos) << loss_graph;
    EXPECT_NE(loss_graph.find("<path"), std::string::npos) << loss_graph;
    EXPECT_NE(loss_graph.find(" d=\"M"), std::string::npos) << loss_graph;
    EXPECT_EQ(loss_graph.find("No timeseries"), std::string::npos) << loss_graph;
  } else {
    ADD_FAILURE() << "no Chromium (apt-get install chromium): the console page was not rendered";
  }

  // Stopped with a checkpoint; each rank lingers for one more scrape, so Prometheus holds the
  // final step of both, which summary.json states independently.
  run.signal(SIGTERM);
  ASSERT_EQ(run.wait_exit(kJobSeconds), hds::common::kExitStopped) << run.output();
  const auto summary = json::parse(read_text(job_dirs_["healthy"] + "/run/summary.json"));
  const double final_step = summary["global_step"].get<double>();
  ASSERT_GT(final_step, 0);
  for (const std::string metric : {"hds_train_global_step", "hds_train_steps_total"}) {
    std::map<std::string, double> steps;
    for (const json& series : query("last_over_time(" + metric + selector + "[10m])", &answer)) {
      steps[series["metric"].value("rank", "?")] = std::stod(series["value"][1].get<std::string>());
    }
    EXPECT_EQ(steps, (std::map<std::string, double>{{"0", final_step}, {"1", final_step}}))
        << metric << ": " << answer;
  }
  EXPECT_FALSE(fs::exists(targets_file)) << "the job's targets file outlived it";
}

// STOP/CONT cycles of the data service (stopped 1.8 s of every 2, less than its heartbeat
// timeout) starve the trainers of batches: the starvation alert fires for this job. The period
// is long against what the service fills the ring with while it runs (4 batches, well under a
// second of training even on a loaded 2-core machine), so the trainers wait most of each cycle.
TEST_F(MonitoringStack, a_slowed_data_service_fires_the_starvation_alert) {
  Command run = launch("starved");
  const std::string job = "starved-" + std::to_string(getpid());
  const auto service = run.wait_for_output(R"(data service \(pid (\d+)\))", kJobSeconds);
  ASSERT_TRUE(service.has_value()) << run.output();
  const pid_t service_pid = std::stoi((*service)[1].str());
  ASSERT_TRUE(run.wait_for_output(kProgress, kJobSeconds)) << run.output();

  std::atomic<bool> slowing{true};
  std::thread slower([&] {
    while (slowing) {
      kill(service_pid, SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(1800));
      kill(service_pid, SIGCONT);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  std::string answer;
  const auto slowed_at = std::chrono::steady_clock::now();
  const bool fired = within(kSeriesSeconds, [&] {
    const auto response = http_get(port_, "/api/v1/alerts");
    answer = response.body;
    const json reply = json::parse(response.body, nullptr, false);
    if (reply.is_discarded()) return false;
    for (const json& alert : reply["data"]["alerts"]) {
      const json& labels = alert["labels"];
      if (labels.value("alertname", "") == "HdsDataStarvation" &&
          labels.value("hds_job", "") == job && alert.value("state", "") == "firing") {
        return true;
      }
    }
    return false;
  });
  const double to_fire =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - slowed_at).count();
  const json share = query(
      "sum by (rank) (rate(hds_train_data_wait_seconds_sum[20s])) / sum by (rank) "
      "(rate(hds_train_step_seconds_sum[20s]))");
  slowing = false;
  slower.join();
  // For tests/bench/RESULTS.md: how soon the (shortened) rule fired, at what share.
  std::cout << "starvation alert firing " << to_fire << " s after the slowing began; wait share "
            << share.dump() << std::endl;
  kill(service_pid, SIGCONT);
  EXPECT_TRUE(fired) << "alerts: " << answer << "\nwait share: " << share.dump();
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait_exit(kJobSeconds), hds::common::kExitStopped) << run.output();
}

}  // namespace
}  // namespace hds::launch

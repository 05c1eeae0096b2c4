#include "hds/monitoring/metrics_endpoint.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>

namespace hds::monitoring {

namespace pm = prometheus;

// What every process reports of itself, read when scraped. Its Collect() runs once per scrape,
// which is how the endpoint counts them.
class ProcessMetrics : public pm::Collectable {
 public:
  explicit ProcessMetrics(Labels labels) : labels_(std::move(labels)) {}

  std::vector<pm::MetricFamily> Collect() const override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++scrapes_;
    }
    scraped_.notify_all();
    std::vector<pm::MetricFamily> families;
    long size_pages = 0, resident_pages = 0;
    std::ifstream statm("/proc/self/statm");
    if (statm >> size_pages >> resident_pages) {
      families.push_back(
          family("hds_process_resident_memory_bytes",
                 "Resident memory of this process (/proc/self/statm)", pm::MetricType::Gauge,
                 static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE))));
    }
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0) {
      auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6;
      };
      families.push_back(family("hds_process_cpu_seconds_total",
                                "User and system CPU time this process has used, all threads",
                                pm::MetricType::Counter,
                                seconds(usage.ru_utime) + seconds(usage.ru_stime)));
    }
    return families;
  }

  bool wait_for_next_scrape(double timeout_seconds) const {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t seen = scrapes_;
    return scraped_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                             [&] { return scrapes_ > seen; });
  }

 private:
  pm::MetricFamily family(const std::string& name, const std::string& help, pm::MetricType type,
                          double value) const {
    pm::ClientMetric metric;
    for (const auto& [label, label_value] : labels_) metric.label.push_back({label, label_value});
    (type == pm::MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
    pm::MetricFamily result;
    result.name = name;
    result.help = help;
    result.type = type;
    result.metric.push_back(std::move(metric));
    return result;
  }

  Labels labels_;
  mutable std::mutex mutex_;
  mutable std::condition_variable scraped_;
  mutable uint64_t scrapes_ = 0;
};

Labels rank_labels(int rank, int local_rank) {
  return {{"rank", std::to_string(rank)}, {"local_rank", std::to_string(local_rank)}};
}

const std::vector<double>& step_seconds_buckets() {
  static const std::vector<double> buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,      2.5,   5,    10,    30,   60,  120};
  return buckets;
}

const std::vector<double>& slow_operation_seconds_buckets() {
  static const std::vector<double> buckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                              5,    10,   30,  60,   120, 300};
  return buckets;
}

MetricsEndpoint::MetricsEndpoint(const std::string& address, int port,
                                 std::shared_ptr<pm::Registry> registry, const Labels& labels,
                                 const std::string& fix_hint)
    : registry_(std::move(registry)), process_(std::make_shared<ProcessMetrics>(labels)) {
  const std::string where = address + ":" + std::to_string(port);
  try {
    exposer_ = std::make_unique<pm::Exposer>(where);
  } catch (const std::exception& error) {
    throw MetricsError("metrics: cannot serve on " + where + " (" + error.what() +
                       "): the port is probably taken by another program or job; " + fix_hint);
  }
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? port : ports.front();
  url_ = "http://" + address + ":" + std::to_string(port_) + "/metrics";
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(process_);
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::register_collectable(std::shared_ptr<pm::Collectable> collectable) {
  collectables_.push_back(collectable);
  exposer_->RegisterCollectable(collectable);
}

bool MetricsEndpoint::wait_for_next_scrape(double timeout_seconds) const {
  return process_->wait_for_next_scrape(timeout_seconds);
}

}  // namespace hds::monitoring

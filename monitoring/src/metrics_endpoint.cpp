#include "hds/monitoring/metrics_endpoint.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <fstream>

namespace hds::monitoring {

namespace pm = prometheus;

namespace {

class ResidentMemory : public pm::Collectable {
 public:
  explicit ResidentMemory(Labels labels) : labels_(std::move(labels)) {}

  std::vector<pm::MetricFamily> Collect() const override {
    long size_pages = 0, resident_pages = 0;
    std::ifstream statm("/proc/self/statm");
    if (!(statm >> size_pages >> resident_pages)) return {};
    pm::ClientMetric metric;
    for (const auto& [name, value] : labels_) metric.label.push_back({name, value});
    metric.gauge.value =
        static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE));
    pm::MetricFamily memory;
    memory.name = "hds_process_resident_memory_bytes";
    memory.help = "Resident memory of this process (/proc/self/statm)";
    memory.type = pm::MetricType::Gauge;
    memory.metric.push_back(std::move(metric));
    return {std::move(memory)};
  }

 private:
  Labels labels_;
};

}  // namespace

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
    : registry_(std::move(registry)), resident_memory_(std::make_shared<ResidentMemory>(labels)) {
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
  exposer_->RegisterCollectable(resident_memory_);
}

MetricsEndpoint::~MetricsEndpoint() = default;

}  // namespace hds::monitoring

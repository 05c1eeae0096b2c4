#include "hds/data_server/service_metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <mutex>

#include "hds/config/config.h"
#include "hds/monitoring/metrics_endpoint.h"

namespace hds::data_server {

namespace pm = prometheus;

namespace {

// The rings' occupancy, asked of the server at each scrape: the rings come and go with the
// trainers' sessions, and a gauge per ring would outlive its ring.
class RingCollectable : public pm::Collectable {
 public:
  void set_source(std::function<std::vector<RingOccupancy>()> source) {
    std::lock_guard<std::mutex> lock(mutex_);
    source_ = std::move(source);
  }

  std::vector<pm::MetricFamily> Collect() const override {
    std::vector<RingOccupancy> rings;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (source_) rings = source_();
    }
    pm::MetricFamily slots{
        "hds_data_ring_slots", "Slots of the rank's shared-memory ring", pm::MetricType::Gauge, {}};
    pm::MetricFamily occupied{"hds_data_ring_occupied_slots",
                              "Batches in the rank's ring written and not yet read by the trainer",
                              pm::MetricType::Gauge,
                              {}};
    for (const RingOccupancy& ring : rings) {
      pm::ClientMetric metric;
      metric.label = {{"rank", std::to_string(ring.rank)}};
      metric.gauge.value = ring.slots;
      slots.metric.push_back(metric);
      metric.gauge.value = static_cast<double>(ring.occupied);
      occupied.metric.push_back(metric);
    }
    return {slots, occupied};
  }

 private:
  mutable std::mutex mutex_;  // held while the source runs: clearing it waits for a scrape
  std::function<std::vector<RingOccupancy>()> source_;
};

}  // namespace

struct ServiceMetrics::State {
  std::shared_ptr<pm::Registry> registry = std::make_shared<pm::Registry>();
  std::shared_ptr<RingCollectable> rings = std::make_shared<RingCollectable>();
  pm::Gauge* connected = nullptr;
  pm::Counter* batches = nullptr;
  pm::Counter* patches = nullptr;
  pm::Histogram* produce_seconds = nullptr;
  pm::Counter* ring_full_wait = nullptr;
  pm::Counter* cache_hits = nullptr;
  pm::Counter* cache_misses = nullptr;
  pm::Counter* skipped = nullptr;
  pm::Counter* heartbeats_missed = nullptr;
  std::unique_ptr<hds::monitoring::MetricsEndpoint> endpoint;  // last: destroyed first
};

ServiceMetrics::ServiceMetrics(const hds::config::MonitoringConfig& monitoring)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  pm::Registry& registry = *s.registry;
  auto counter = [&](const std::string& name, const std::string& help) {
    return &pm::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  s.connected = &pm::BuildGauge()
                     .Name("hds_data_connected_trainers")
                     .Help("Trainer ranks connected to this data service, each with a ring")
                     .Register(registry)
                     .Add({});
  s.batches = counter("hds_data_batches_total", "Batches published to the trainers' rings");
  s.patches = counter("hds_data_patches_total", "Patches in the batches published");
  s.produce_seconds = &pm::BuildHistogram()
                           .Name("hds_data_produce_seconds")
                           .Help("Time a producer thread took to sample and augment one batch")
                           .Register(registry)
                           .Add({}, hds::monitoring::step_seconds_buckets());
  s.ring_full_wait = counter("hds_data_ring_full_wait_seconds_total",
                             "Time producer threads spent blocked on a full ring (the trainer is "
                             "the slower side)");
  s.cache_hits = counter("hds_data_cache_hits_total",
                         "Films the preprocessing cache served when the dataset was loaded");
  s.cache_misses = counter("hds_data_cache_misses_total",
                           "Films preprocessed afresh when the dataset was loaded");
  s.skipped = counter("hds_data_films_skipped_total",
                      "Films left out as bad when the dataset was loaded (data.on_bad_sample)");
  s.heartbeats_missed = counter("hds_data_heartbeats_missed_total",
                                "Trainer sessions ended because the trainer's heartbeat stopped");
  const int port = hds::config::data_service_metrics_port(monitoring);
  if (port <= 0 || port > 65535) {
    throw hds::monitoring::MetricsError(
        "metrics: the data service's port " + std::to_string(port) +
        " (monitoring.metrics_port + monitoring.data_service_port_offset) is not a port");
  }
  s.endpoint = std::make_unique<hds::monitoring::MetricsEndpoint>(
      monitoring.metrics_address(), port, s.registry, hds::monitoring::Labels{},
      "choose another with monitoring.metrics_port or monitoring.data_service_port_offset, or set "
      "monitoring.metrics_port = 0 to turn metrics off");
  s.endpoint->register_collectable(s.rings);
}

ServiceMetrics::~ServiceMetrics() = default;

const std::string& ServiceMetrics::url() const { return state_->endpoint->url(); }

void ServiceMetrics::record_dataset(int cache_hits, int cache_misses, int skipped_films) {
  state_->cache_hits->Increment(cache_hits);
  state_->cache_misses->Increment(cache_misses);
  state_->skipped->Increment(skipped_films);
}

void ServiceMetrics::record_batch(int patches, double produce_seconds) {
  state_->batches->Increment();
  state_->patches->Increment(patches);
  state_->produce_seconds->Observe(produce_seconds);
}

void ServiceMetrics::record_ring_full_wait(double seconds) {
  state_->ring_full_wait->Increment(seconds);
}

void ServiceMetrics::record_heartbeat_missed() { state_->heartbeats_missed->Increment(); }

void ServiceMetrics::set_connected_trainers(int count) { state_->connected->Set(count); }

void ServiceMetrics::set_ring_occupancy_source(std::function<std::vector<RingOccupancy>()> source) {
  state_->rings->set_source(std::move(source));
}

}  // namespace hds::data_server

// Prometheus metrics of `hds-data-service serve` (docs/design.md §6), on hds_monitoring's endpoint
// at http://monitoring.metrics_address:(monitoring.metrics_port +
// monitoring.data_service_port_offset)/metrics. Names follow Prometheus conventions (hds_ prefix,
// base units, _total counters); per-rank series carry the trainer's `rank` label, nothing else
// is labelled (a node's ranks are few).
//
//   hds_data_connected_trainers          gauge     trainer ranks with a ring now
//   hds_data_ring_slots{rank}            gauge     slots of the rank's ring
//   hds_data_ring_occupied_slots{rank}   gauge     batches written and not yet read, per scrape
//   hds_data_batches_total               counter   batches published to rings
//   hds_data_patches_total               counter   patches in those batches
//   hds_data_produce_seconds             histogram time to sample and augment one batch
//   hds_data_ring_full_wait_seconds_total counter  producers' time blocked on a full ring
//   hds_data_cache_hits_total            counter   films the preprocessing cache served
//   hds_data_cache_misses_total          counter   films preprocessed afresh
//   hds_data_films_skipped_total         counter   films left out as bad (data.on_bad_sample)
//   hds_data_heartbeats_missed_total     counter   trainer sessions ended by a silent heartbeat
//   hds_process_resident_memory_bytes, hds_process_cpu_seconds_total (hds_monitoring)
//
// No prometheus-cpp in this header; thread-safe (producer threads record while scrapes read).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::data_server {

// A rank's ring as a scrape sees it.
struct RingOccupancy {
  int rank = 0;
  uint32_t slots = 0;
  uint64_t occupied = 0;
};

class ServiceMetrics {
 public:
  // Serves at data_service_metrics_port(monitoring) (hds/config/config.h), which must not be 0.
  // Throws hds::monitoring::MetricsError naming the port and the fields to change.
  explicit ServiceMetrics(const hds::config::MonitoringConfig& monitoring);
  ~ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  const std::string& url() const;

  void record_dataset(int cache_hits, int cache_misses, int skipped_films);
  void record_batch(int patches, double produce_seconds);
  void record_ring_full_wait(double seconds);
  void record_heartbeat_missed();
  void set_connected_trainers(int count);
  // Called at each scrape for the rings' occupancy; null (the default) reports no ring. The
  // server sets it while it runs and clears it before it is destroyed.
  void set_ring_occupancy_source(std::function<std::vector<RingOccupancy>()> source);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hds::data_server

// The generic half of every process's Prometheus metrics: an HTTP endpoint serving a registry at
// http://<address>:<port>/metrics, the labels that tell the ranks of a job apart, this process's
// resident memory and CPU time, and the histogram buckets shared by the catalogue's durations.
// Names follow Prometheus conventions (hds_ prefix, base units, _total counters, _seconds
// histograms; docs/design.md §6). What a component records (the trainer's steps, the data service's
// ring) lives with that component, on top of this.
//
// prometheus-cpp's HTTP server stays behind this header (forward-declared), like prometheus-cpp's
// own exposer keeps its civetweb private.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace hds::monitoring {

// The endpoint could not start (e.g. its port is taken). what() names the address, the port and
// the caller's hint on what to change.
class MetricsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Labels = std::map<std::string, std::string>;

// {rank, local_rank}: on every series of a rank, so that one Prometheus scrape job can collect
// the ranks of several nodes and still tell them apart.
Labels rank_labels(int rank, int local_rank);

// Bucket boundaries in seconds. Steps and waits: from a millisecond (a tiny model's step, an idle
// ring) to minutes (a stalled data service).
const std::vector<double>& step_seconds_buckets();
// Slow operations (checkpoints): milliseconds for a small model, minutes for the paper's on a
// network file system.
const std::vector<double>& slow_operation_seconds_buckets();

// Serves `registry`, hds_process_resident_memory_bytes{labels} (/proc/self/statm) and
// hds_process_cpu_seconds_total{labels} (user + system time, getrusage) until destroyed; both are
// read at every scrape, so they stay current while the process is busy. Construct it
// after the registry's families, and destroy it first: no scrape then sees a half-built or
// destroyed registry. Thread-safe: the server's threads read while other threads record.
class ProcessMetrics;

class MetricsEndpoint {
 public:
  // Binds address:port ("127.0.0.1", 9400; port 0 picks a free one). Throws MetricsError ending
  // with `fix_hint` (e.g. "choose another with monitoring.metrics_port") when it cannot bind.
  MetricsEndpoint(const std::string& address, int port,
                  std::shared_ptr<prometheus::Registry> registry, const Labels& labels,
                  const std::string& fix_hint);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // The port it listens on (the one picked when 0 was asked for).
  int port() const { return port_; }
  // "http://127.0.0.1:9400/metrics"
  const std::string& url() const { return url_; }
  // Serves `collectable` too (families computed at each scrape), from now until destroyed.
  void register_collectable(std::shared_ptr<prometheus::Collectable> collectable);
  // Blocks until a scrape begins after this call or `timeout_seconds` pass; true if one did. A
  // process about to exit calls it so that Prometheus keeps its final values.
  bool wait_for_next_scrape(double timeout_seconds) const;

 private:
  // The exposer holds weak pointers: these keep what it serves alive.
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessMetrics> process_;  // also tells when a scrape comes
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // last: destroyed first
  int port_ = 0;
  std::string url_;
};

}  // namespace hds::monitoring

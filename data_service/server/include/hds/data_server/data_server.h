// `hds-data-service serve`: streams batches of a PatchSampler to trainer ranks. Each rank
// connects to the control socket and says Hello; the server creates the rank's shared-memory ring
// and, on StartEpoch, worker threads fill its slots in order with
// sampler.batch(epoch, step, rank, world_size), continuing across epoch ends. A rank's session
// ends when it sends Shutdown, closes the socket (or dies: the socket closes with it), or stops
// reading its ring (its heartbeat stops): its ring is then unlinked. See proto/control.proto.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/data/dataset.h"
#include "hds/data/patch_sampler.h"
#include "hds/data_server/service_metrics.h"
#include "hds/transport/control_channel.h"

namespace hds::data_server {

// What `serve` gives each rank unless told otherwise (--slots, --workers).
constexpr uint32_t kDefaultSlotsPerRank = 4;
constexpr int kDefaultWorkersPerRank = 2;

struct ServeOptions {
  std::string socket_path;
  std::string job_id;  // ring names are derived from it; Hello must carry the same
  uint32_t slot_count = kDefaultSlotsPerRank;
  int workers_per_rank = kDefaultWorkersPerRank;  // threads filling each rank's ring
  double peer_timeout_seconds = 10;               // a trainer silent this long is dropped
  // Bytes all rings together may take in /dev/shm (memory); 0: default_ring_budget of what the
  // machine has when the server starts. A Hello whose ring would exceed it is refused.
  uint64_t ring_memory_bytes = 0;
  // The normalisation of the patches (Dataset::mean, std), announced to every rank.
  hds::data::PixelStatistics normalisation;
  std::ostream* log = nullptr;        // session events (connect, end, errors); std::cerr if null
  ServiceMetrics* metrics = nullptr;  // where the server records; null records nothing
};

class RankSession;

// Connections that have not said Hello yet, at most (each holds a thread for up to the peer
// timeout); more are closed at once.
constexpr int kMaxConnectionsWaitingForHello = 64;

// The rings' default budget: half of the smaller of /dev/shm's free space and the available
// memory (both: a ring is a file in /dev/shm, held in memory), so that no combination of ranks
// and slots can fill either.
uint64_t default_ring_budget(uint64_t shm_free_bytes, uint64_t available_memory_bytes);

// The service. run() on one thread; stop() from anywhere, including a signal handler.
class DataServer {
 public:
  // Listens on options.socket_path (see ControlListener). `sampler` must outlive the server.
  // Throws hds::transport::ControlError or RingError.
  DataServer(const hds::data::PatchSampler& sampler, ServeOptions options);
  // Ends every session: rings, the socket and its directory are removed.
  ~DataServer();
  DataServer(const DataServer&) = delete;
  DataServer& operator=(const DataServer&) = delete;

  // Accepts and serves trainer connections until stop() or a Shutdown{stop_service}.
  void run();
  // Makes run() return soon. Async-signal-safe (one write to an eventfd).
  void stop();

  const ServeOptions& options() const { return options_; }
  // The rings' budget in force (options().ring_memory_bytes or the default).
  uint64_t ring_budget() const { return ring_budget_; }
  // A line of the session log (options().log), whole even when sessions log at once.
  void log_line(const std::string& line);

 private:
  friend class RankSession;
  // Checks a Hello against the server's state and claims its rank; "" or the refusal.
  std::string admit(const hds::control::Hello& hello, RankSession* session);
  void release_rank(int rank);
  // Claims `bytes` of the rings' budget for `who`; "" or the refusal (what is in use, what to
  // change). release_ring_bytes gives them back when the ring is gone.
  std::string reserve_ring_bytes(uint64_t bytes, const std::string& who);
  void release_ring_bytes(uint64_t bytes);
  // The rings of the sessions that have one (for the metrics' scrapes).
  std::vector<RingOccupancy> ring_occupancy();
  void record_connected_trainers();  // with mutex_ held
  void reap_finished_sessions();
  int connections_waiting_for_hello();

  const hds::data::PatchSampler& sampler_;
  ServeOptions options_;
  hds::transport::ControlListener listener_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};

  uint64_t ring_budget_ = 0;

  std::mutex log_mutex_;
  std::mutex mutex_;    // guards the members below
  int world_size_ = 0;  // fixed by the first Hello
  uint64_t ring_bytes_reserved_ = 0;
  int rings_reserved_ = 0;
  std::list<std::unique_ptr<RankSession>> sessions_;
  std::vector<RankSession*> session_of_rank_;
};

// `hds-data-service serve`: loads the dataset of `config`, serves its training split with
// sampler_options_for(config) until SIGTERM, SIGINT or a Shutdown{stop_service}, then removes
// every ring and the socket. `on_ready` runs once the socket listens. The dataset's cache use and
// skipped films go to options.metrics too. Throws DataError, ControlError or RingError.
void serve(const hds::config::Config& config, const ServeOptions& options,
           const std::function<void()>& on_ready);

}  // namespace hds::data_server

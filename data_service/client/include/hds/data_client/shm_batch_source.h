// Training batches from a running `hds-data-service serve` (docs/design.md §5): connects to its
// control socket, says Hello, maps the rank's shared-memory ring and reads batches from it in
// order. batch() asks the service to (re)start its stream whenever the batch wanted is not the next
// one streamed (the first call, a resume in mid-epoch); streams continue across epoch ends. A
// service that dies or hangs is reported within timeout_seconds, naming its pid; with
// reconnect_seconds, the source waits that long for a new service on the same socket (a launcher
// restarting it in place), connects to it and asks it for the batch due, which is the one the
// lost service would have sent (batches are keyed by seed, epoch, step and rank). Not
// thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "hds/data_client/batch_source.h"
#include "hds/transport/control_channel.h"
#include "hds/transport/shm_ring.h"

namespace hds::data_client {

struct ShmBatchSourceOptions {
  std::string socket_path;
  std::string job_id;  // the service's --job-id
  int rank = 0;
  int world_size = 1;
  double timeout_seconds = 10;  // for replies and for the ring's heartbeats
  // What this trainer was configured for; the service must serve the same (0: accept any).
  int patch_rows = 0;
  int patch_cols = 0;
  int batch_size = 0;
  // After the service is lost: how long to wait for a new one (0: report the loss at once), and
  // who is told of the loss and of the reconnection (either may be empty).
  double reconnect_seconds = 0;
  std::function<void(const std::string&)> on_service_lost;
  std::function<void(const std::string&)> on_reconnected;
};

class ShmBatchSource : public BatchSource {
 public:
  // Connects and maps the ring. Throws hds::transport::ControlError (no service, a refused Hello),
  // hds::transport::RingError (a bad segment) or std::runtime_error (a service serving other
  // patches than configured).
  explicit ShmBatchSource(const ShmBatchSourceOptions& options);
  // Says Shutdown (best effort): the service removes this rank's ring.
  ~ShmBatchSource() override;

  int steps_per_epoch() const override { return steps_per_epoch_; }
  std::optional<Normalisation> normalisation() const override { return normalisation_; }
  // Throws hds::transport::RingPeerError when the service died or hung (and none came back
  // within reconnect_seconds), hds::transport::RingError when the ring is corrupt or a batch
  // arrives out of order, hds::transport::ControlError when the service refuses the stream.
  hds::transport::PatchBatch batch(int epoch, int step) override;

 private:
  // Connects (waiting up to `wait_seconds` for the socket), says Hello and maps the ring.
  void connect(double wait_seconds);
  // Keeps the normalisation `answer` announces; throws when it is unusable or differs from the
  // one the first service announced.
  void check_normalisation(const hds::control::HelloReply& answer);
  // After `loss`: connects to a new service within reconnect_seconds, or throws.
  void reconnect(const std::string& loss);
  hds::transport::PatchBatch next_batch(int epoch, int step);
  void start_stream(int epoch, int step);

  ShmBatchSourceOptions options_;
  std::optional<hds::transport::ControlChannel> channel_;
  std::unique_ptr<hds::transport::RingConsumer> ring_;
  std::unique_ptr<hds::transport::HeartbeatThread> heartbeat_;
  int steps_per_epoch_ = 0;
  std::optional<Normalisation> normalisation_;  // the first service's; a new one must agree
  int next_epoch_ = 0;  // the batch the stream delivers next; 0: no stream yet
  int next_step_ = 0;
};

}  // namespace hds::data_client

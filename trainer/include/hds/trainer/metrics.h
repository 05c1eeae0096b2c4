// Prometheus metrics of one trainer rank (docs/design.md §6), on hds_monitoring's endpoint: every
// rank serves its own
// http://monitoring.metrics_address:(monitoring.metrics_port + local rank)/metrics. Names follow
// Prometheus conventions (hds_ prefix, base units, _total counters, _seconds histograms); every
// series carries the labels rank and local_rank. No LibTorch: fit() reports through StepReport and
// the FitOptions callbacks (training.h).
//
//   hds_train_steps_total                counter   steps done by this rank since it started
//   hds_train_patches_total              counter   patches this rank trained on
//   hds_train_global_step                gauge     the job's global step (continues on resume)
//   hds_train_epoch                      gauge     1-based epoch of the last step
//   hds_train_last_step_timestamp_seconds gauge    Unix time the last step ended (the rank's start
//                                                  before its first step)
//   hds_train_loss{head,term}            gauge     unweighted loss of head 0..5, term seg or cls
//   hds_train_weighted_loss              gauge     the total weighted loss that is minimised
//   hds_train_learning_rate              gauge
//   hds_train_gradient_norm              gauge     L2 norm of the gradient applied in the last step
//   hds_train_head_weight{head,term}     gauge     the epoch's head weights
//   hds_train_patches_per_second         gauge     this rank's patches / wall time of the last step
//   hds_train_step_seconds               histogram wall time of a step, data included
//   hds_train_data_wait_seconds          histogram waiting for the batch
//   hds_train_gradient_sync_seconds      histogram waiting for the gradient sync after backward
//   hds_train_world_size                 gauge     ranks in the job
//   hds_train_device_memory_allocated_bytes, hds_train_device_memory_reserved_bytes
//                                        gauges    GPU memory of a CUDA rank (absent on the CPU)
//   hds_process_resident_memory_bytes    gauge     this process's resident memory, read per scrape
//   hds_process_cpu_seconds_total        counter   this process's user + system CPU time
//   rank 0 only:
//   hds_validation_epoch, hds_validation_dice, hds_validation_accuracy, hds_validation_auc,
//   hds_validation_best_dice (the best Dice so far, continued on resume)
//   hds_checkpoint_seconds               histogram time to write a checkpoint
//
// Thread-safe: the HTTP server's threads read while the training thread records.
#pragma once

#include <memory>
#include <string>

#include "checkpoint.pb.h"
#include "config.pb.h"
#include "hds/trainer/step_report.h"

namespace hds::trainer {

// Who this rank is, for the labels.
struct RankIdentity {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
};

class TrainerMetrics final : public TrainingObserver {
 public:
  // Starts serving at metrics_address:(metrics_port + local_rank). Throws
  // hds::monitoring::MetricsError (hds/monitoring/metrics_endpoint.h), naming
  // monitoring.metrics_port, when the port is out of range or cannot be bound. metrics_port must
  // not be 0 (export off: construct nothing).
  // The destructor first waits up to monitoring.linger_seconds for one more scrape.
  TrainerMetrics(const hds::config::MonitoringConfig& monitoring, const RankIdentity& identity);
  ~TrainerMetrics() override;
  TrainerMetrics(const TrainerMetrics&) = delete;
  TrainerMetrics& operator=(const TrainerMetrics&) = delete;

  // "http://127.0.0.1:9400/metrics"
  const std::string& url() const;

  void on_step(const StepReport& report) override;
  // The NaN or infinite total loss of the step that ends the run.
  void on_nonfinite_loss(double weighted_loss) override;
  // Rank 0 only (ignored elsewhere).
  void on_validation(const hds::checkpoint::ValidationResult& validation,
                     const hds::checkpoint::ValidationResult& best_dice) override;
  void on_checkpoint(double seconds) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hds::trainer

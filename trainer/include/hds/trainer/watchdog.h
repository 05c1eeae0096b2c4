// Every rank's watchdog (docs/design.md §5). The training loop tells it what the rank does (the
// step, its activity) and the World tells it of each collective; a thread of its own publishes
// that to the job's progress table (hds/common/rank_progress.h) about once a second and checks two
// deadlines: a collective in flight, and a step's computation, may each take `timeout_seconds`
// (`first_step_timeout_seconds` until the rank's first step is done). When one passes, the thread
// reads the peers' records and calls `on_hang` with a report of what waited, for how long, and
// which ranks had not arrived and what they were last seen doing; on_hang ends the job.
//
// A collective that waits on ranks which are all alive (a fresh record) in an activity without a
// deadline (rank 0 validating or checkpointing, a rank waiting for its batch or still starting)
// goes on waiting: those are bounded elsewhere or rightly long. A rank that is stopped, hung or
// dead stops refreshing its record, so the wait on it ends at the deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "hds/common/rank_progress.h"
#include "hds/trainer/world.h"

namespace hds::trainer {

using hds::common::activity_name;
using hds::common::has_deadline;
using hds::common::ProgressTable;
using hds::common::RankActivity;
using hds::common::RankProgress;

struct WatchdogOptions {
  std::string progress_dir;  // the job's table (<train.output_dir>/progress)
  std::string instance;      // World::instance()
  int rank = 0;
  int world_size = 1;
  double timeout_seconds = 60;
  double first_step_timeout_seconds = 300;
  double heartbeat_seconds = 1;  // how often the rank's record is rewritten
  // Run on the watchdog's thread at every check: work that must happen even while the main
  // thread is stuck (an overdue stop's checkpoint). May be empty.
  std::function<void()> every_check;
};

class Watchdog final : public CollectiveObserver {
 public:
  // Publishes the first record (activity starting) and starts the thread. `on_hang` runs on that
  // thread, at most once. Throws std::runtime_error when the table cannot be written.
  Watchdog(WatchdogOptions options, std::function<void(const std::string& report)> on_hang);
  ~Watchdog() override;
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_activity(RankActivity activity);
  // Step `step` (1-based) of `epoch`, global step `global_step` (1-based), begins: its batch is
  // awaited.
  void step_started(int epoch, int step, int64_t global_step);
  // The step is done (activity between_steps); the first step's allowance ends.
  void step_finished();
  // The run begins at global step `global_step` (0: afresh; else the checkpoint's).
  void resumed_at(int64_t global_step);

  void collective_started(const char* what) override;
  void collective_finished() override;

  // The record as the thread would publish it now.
  RankProgress snapshot() const;

 private:
  using Clock = std::chrono::steady_clock;
  void run();
  void publish();
  // The report when a deadline has passed now (and the peers do not excuse the wait), else "".
  std::string check_deadlines();
  std::string describe_peers(uint64_t collectives, bool& excused) const;
  RankProgress snapshot_locked() const;

  const WatchdogOptions options_;
  const std::function<void(const std::string&)> on_hang_;
  const ProgressTable table_;

  mutable std::mutex mutex_;  // guards the state below
  std::condition_variable wake_;
  bool closing_ = false;
  RankProgress progress_;
  Clock::time_point activity_since_;
  Clock::time_point collective_since_;
  bool first_step_done_ = false;
  std::thread thread_;
};

}  // namespace hds::trainer

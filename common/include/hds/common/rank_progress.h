// What each rank of a job is doing, where its peers (the watchdog, hds/trainer/watchdog.h) and the
// launcher (after a failure: how many steps a restart redoes) can read it without a collective
// (docs/design.md §5): one small JSON file per rank, <train.output_dir>/progress/rank-<r>.json,
// replaced atomically (written aside, renamed) about once a second by the rank's watchdog. The
// run's output folder is shared by all ranks (each reads the checkpoint it resumes from), so the
// table spans nodes as well; the age of a record compares wall clocks, which a cluster keeps in
// step. The files stay after the job: the last thing each rank was seen doing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace hds::common {

// What a rank's main thread is doing. Computing has the watchdog's deadline; so does any
// collective. The others are bounded elsewhere (the data source's timeouts) or may rightly take
// long (rank 0 validating while the other ranks wait for it).
enum class RankActivity {
  starting,          // loading the dataset, building the model, connecting
  waiting_for_data,  // for the step's batch
  reconnecting,      // the data service was lost: waiting for a new one
  computing,         // forward, backward, gradient sync, optimizer
  between_steps,     // after a step: agreeing whether to stop
  validating,
  checkpointing,
  finishing,  // writing the summary, leaving
};
const char* activity_name(RankActivity activity);
// True for the activities the step deadline applies to.
bool has_deadline(RankActivity activity);

struct RankProgress {
  std::string instance;  // World::instance(): records of an earlier launch are not this job's
  int rank = 0;
  int pid = 0;
  std::string host;
  RankActivity activity = RankActivity::starting;
  double activity_seconds = 0;  // how long it had been in `activity` when written
  int epoch = 0;                // of the current or last step; 0 before the first
  int step = 0;                 // 1-based within the epoch
  int64_t global_step = 0;      // steps finished
  int64_t resumed_from = -1;    // the global step this launch began at (0: afresh); -1: not yet
  uint64_t collectives = 0;     // collectives entered so far, the one in flight included
  std::string collective;       // the collective in flight; "" when none
  double written_at = 0;        // Unix time, seconds
};

// Now as Unix time in seconds: the clock of RankProgress::written_at.
double unix_seconds();

// The job's table: <output_dir>/progress.
std::string progress_table_dir(const std::string& output_dir);

// The steps a record's rank had finished (a step under way not counted).
int64_t completed_steps(const RankProgress& progress);

class ProgressTable;
// The most steps any of ranks 0 .. ranks-1 had finished, over the records `counts` accepts
// (0 when none).
int64_t most_steps_done(const ProgressTable& table, int ranks,
                        const std::function<bool(const RankProgress&)>& counts);

// The table's files under one directory (created when missing).
class ProgressTable {
 public:
  explicit ProgressTable(std::string directory);
  std::string path_of(int rank) const;
  // Replaces the rank's record. Throws std::runtime_error naming the file when it cannot.
  void publish(const RankProgress& progress) const;
  // The record of `rank`; nullopt when it has none or it cannot be parsed (a torn write is
  // impossible, a foreign file is not).
  std::optional<RankProgress> read(int rank) const;

 private:
  std::string directory_;
};

}  // namespace hds::common

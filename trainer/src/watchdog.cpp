#include "hds/trainer/watchdog.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace hds::trainer {

namespace {

// A record older than this many heartbeats is a rank that stopped publishing: stopped, hung in
// a way that stops its threads, or dead.
constexpr double kStaleHeartbeats = 5;
constexpr double kMinStaleSeconds = 2;

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

// "epoch 3, step 2 (global step 14)", or "before the first step".
std::string step_text(const RankProgress& p) {
  if (p.epoch == 0) return "before the first step";
  return "epoch " + std::to_string(p.epoch) + ", step " + std::to_string(p.step) +
         " (global step " + std::to_string(p.global_step) + ")";
}

std::string rank_text(const RankProgress& p) {
  return "rank " + std::to_string(p.rank) + " (pid " + std::to_string(p.pid) + " on " + p.host +
         ")";
}

}  // namespace

Watchdog::Watchdog(WatchdogOptions options, std::function<void(const std::string&)> on_hang)
    : options_(std::move(options)), on_hang_(std::move(on_hang)), table_(options_.progress_dir) {
  progress_.instance = options_.instance;
  progress_.rank = options_.rank;
  progress_.pid = static_cast<int>(getpid());
  progress_.host = host_name();
  activity_since_ = Clock::now();
  publish();
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  wake_.notify_all();
  thread_.join();
  try {
    publish();  // the last thing this rank did
  } catch (const std::exception&) {
    // A full disk at exit must not turn a finished run into a failure.
  }
}

void Watchdog::set_activity(RankActivity activity) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (progress_.activity == activity) return;
  progress_.activity = activity;
  activity_since_ = Clock::now();
}

void Watchdog::step_started(int epoch, int step, int64_t global_step) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.epoch = epoch;
  progress_.step = step;
  progress_.global_step = global_step;
  progress_.activity = RankActivity::waiting_for_data;
  activity_since_ = Clock::now();
}

void Watchdog::step_finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  first_step_done_ = true;
  progress_.activity = RankActivity::between_steps;
  activity_since_ = Clock::now();
}

void Watchdog::resumed_at(int64_t global_step) {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.resumed_from = global_step;
  progress_.global_step = global_step;
}

void Watchdog::collective_started(const char* what) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++progress_.collectives;
  progress_.collective = what;
  collective_since_ = Clock::now();
}

void Watchdog::collective_finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  progress_.collective.clear();
}

RankProgress Watchdog::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot_locked();
}

RankProgress Watchdog::snapshot_locked() const {
  RankProgress p = progress_;
  p.activity_seconds = std::chrono::duration<double>(Clock::now() - activity_since_).count();
  p.written_at = hds::common::unix_seconds();
  return p;
}

void Watchdog::publish() { table_.publish(snapshot()); }

void Watchdog::run() {
  // Checks often enough that a deadline is noticed well within a tenth of it.
  const double poll = std::clamp(options_.timeout_seconds / 20, 0.02, 0.5);
  auto next_publish = Clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!closing_) {
    wake_.wait_for(lock, std::chrono::duration<double>(poll));
    if (closing_) return;
    lock.unlock();
    if (Clock::now() >= next_publish) {
      try {
        publish();
      } catch (const std::exception& e) {
        // Peers then see this rank as silent; say why once per heartbeat rather than die.
        std::cerr << "watchdog: " << e.what() << std::endl;
      }
      next_publish = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options_.heartbeat_seconds));
    }
    if (options_.every_check) options_.every_check();
    const std::string report = check_deadlines();
    if (!report.empty()) {
      on_hang_(report);
      return;
    }
    lock.lock();
  }
}

std::string Watchdog::check_deadlines() {
  RankProgress me;
  double in_collective = 0;
  double limit = 0;
  std::string limit_name;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    me = snapshot_locked();
    in_collective = std::chrono::duration<double>(Clock::now() - collective_since_).count();
    limit = first_step_done_ ? options_.timeout_seconds : options_.first_step_timeout_seconds;
    limit_name = first_step_done_ ? "distributed.collective_timeout_seconds"
                                  : "distributed.first_step_timeout_seconds";
  }
  std::ostringstream report;
  std::ostringstream over;
  over << " (over " << limit_name << " = " << limit << ")";
  if (!me.collective.empty() && in_collective > limit) {
    bool excused = false;
    const std::string peers = describe_peers(me.collectives, excused);
    if (excused) return "";
    report << "watchdog: collective \"" << me.collective << "\" (collective " << me.collectives
           << " of this launch), " << step_text(me) << ", has waited "
           << seconds_text(in_collective) << over.str() << "\n"
           << peers;
  } else if (me.collective.empty() && has_deadline(me.activity) && me.activity_seconds > limit) {
    // This rank's own work is stuck; its peers wait for it in their next collective.
    report << "watchdog: " << step_text(me) << " has been " << activity_name(me.activity) << " for "
           << seconds_text(me.activity_seconds) << over.str() << "\n";
  } else {
    return "";
  }
  report << "ending the job (exit 4: a rank hung or was lost)";
  return report.str();
}

std::string Watchdog::describe_peers(uint64_t collectives, bool& excused) const {
  const double now = hds::common::unix_seconds();
  const double stale_after =
      std::max(kMinStaleSeconds, kStaleHeartbeats * options_.heartbeat_seconds);
  std::ostringstream lines;
  int arrived = 0;
  int missing = 0;
  bool all_missing_excused = true;
  for (int rank = 0; rank < options_.world_size; ++rank) {
    if (rank == options_.rank) continue;
    const auto peer = table_.read(rank);
    if (!peer || peer->instance != options_.instance) {
      ++missing;
      all_missing_excused = false;
      lines << "  rank " << rank << ": no record from this launch in " << table_.path_of(rank)
            << " (never started, or its output folder is not this one)\n";
      continue;
    }
    if (peer->collectives >= collectives) {
      ++arrived;
      continue;
    }
    ++missing;
    const double age = now - peer->written_at;
    const bool alive = age <= stale_after;
    if (!alive || has_deadline(peer->activity)) all_missing_excused = false;
    lines << "  " << rank_text(*peer) << ": not arrived; "
          << (alive ? "last heard " + seconds_text(age) + " ago"
                    : "silent for " + seconds_text(age) + " (stopped, hung or dead)")
          << ", " << activity_name(peer->activity) << " for "
          << seconds_text(peer->activity_seconds) << " then, " << step_text(*peer) << ", after "
          << peer->collectives << " collectives"
          << (peer->collective.empty() ? "" : " (in \"" + peer->collective + "\")") << "\n";
  }
  excused = missing > 0 && all_missing_excused;
  if (missing == 0) {
    lines << "  every other rank (" << arrived
          << ") has arrived: the collective itself is stuck (network, MPI or NCCL)\n";
  } else if (arrived > 0) {
    lines << "  " << arrived << " other rank(s) arrived\n";
  }
  return lines.str();
}

}  // namespace hds::trainer

#include "hds/trainer/watchdog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "hds/test/eventually.h"
#include "hds/test/files.h"

namespace hds::trainer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using hds::test::eventually;
using hds::test::scratch_dir;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Rank `rank` of a two-rank job whose table is in `dir`, with short limits.
WatchdogOptions options_for(const std::string& dir, int rank, double timeout = 0.3,
                            double first_step_timeout = 0.3) {
  WatchdogOptions options;
  options.progress_dir = dir + "/progress";
  options.instance = "test-launch";
  options.rank = rank;
  options.world_size = 2;
  options.timeout_seconds = timeout;
  options.first_step_timeout_seconds = first_step_timeout;
  options.heartbeat_seconds = 0.05;
  return options;
}

// Collects the report of a watchdog's hang (instead of ending the process).
class HangCatcher {
 public:
  std::function<void(const std::string&)> handler() {
    return [this](const std::string& report) { promise_.set_value(report); };
  }
  // The report, when one comes within `seconds`; "" otherwise.
  std::string wait(double seconds) {
    if (future_.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
      return "";
    }
    return future_.get();
  }

 private:
  std::promise<std::string> promise_;
  std::future<std::string> future_ = promise_.get_future();
};

// A record of rank 1 as a peer process would have left it `age` seconds ago.
RankProgress peer_record(RankActivity activity, uint64_t collectives, double age) {
  RankProgress peer;
  peer.instance = "test-launch";
  peer.rank = 1;
  peer.pid = 4242;
  peer.host = "node-b";
  peer.activity = activity;
  peer.epoch = 3;
  peer.step = 2;
  peer.global_step = 14;
  peer.collectives = collectives;
  peer.written_at = hds::common::unix_seconds() - age;
  return peer;
}

TEST(ProgressTable, a_record_reads_back_whole_and_foreign_files_read_as_none) {
  const std::string dir = scratch_dir("progress-table");
  ProgressTable table(dir + "/progress");
  RankProgress record = peer_record(RankActivity::validating, 41, 0);
  record.collective = "stop agreement";
  record.activity_seconds = 2.5;
  table.publish(record);
  const auto back = table.read(1);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->instance, "test-launch");
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->host, "node-b");
  EXPECT_EQ(back->activity, RankActivity::validating);
  EXPECT_DOUBLE_EQ(back->activity_seconds, 2.5);
  EXPECT_EQ(back->epoch, 3);
  EXPECT_EQ(back->step, 2);
  EXPECT_EQ(back->global_step, 14);
  EXPECT_EQ(back->collectives, 41u);
  EXPECT_EQ(back->collective, "stop agreement");
  EXPECT_DOUBLE_EQ(back->written_at, record.written_at);
  EXPECT_FALSE(fs::exists(table.path_of(1) + ".partial"));

  EXPECT_FALSE(table.read(0).has_value()) << "no file";
  hds::test::write_text(table.path_of(0), "{\"rank\": 0}");
  EXPECT_FALSE(table.read(0).has_value()) << "fields missing";
  hds::test::write_text(table.path_of(0), hds::test::read_text(table.path_of(1)));
  EXPECT_FALSE(table.read(0).has_value()) << "rank 1's record under rank 0's name";
}

TEST(Watchdog, publishes_its_rank_at_once_and_then_what_it_does) {
  const std::string dir = scratch_dir("watchdog-publish");
  HangCatcher hang;
  Watchdog watchdog(options_for(dir, 0, 30, 30), hang.handler());
  ProgressTable table(dir + "/progress");
  const auto first = table.read(0);
  ASSERT_TRUE(first.has_value()) << "published before the constructor returned";
  EXPECT_EQ(first->pid, static_cast<int>(getpid()));
  EXPECT_EQ(first->activity, RankActivity::starting);
  EXPECT_EQ(first->collectives, 0u);

  watchdog.step_started(2, 1, 7);
  watchdog.set_activity(RankActivity::computing);
  watchdog.collective_started("bucket 1/3 all-reduce");
  EXPECT_TRUE(eventually(
      [&] {
        const auto now = table.read(0);
        return now && now->collective == "bucket 1/3 all-reduce" && now->global_step == 7 &&
               now->epoch == 2 && now->step == 1 && now->collectives == 1 &&
               now->activity == RankActivity::computing;
      },
      5));
  watchdog.collective_finished();
  EXPECT_TRUE(eventually([&] { return table.read(0)->collective.empty(); }, 5));
  EXPECT_EQ(hang.wait(0), "");
}

TEST(Watchdog, a_collective_waiting_on_a_silent_rank_is_reported_after_the_timeout) {
  const std::string dir = scratch_dir("watchdog-silent-peer");
  ProgressTable(dir + "/progress").publish(peer_record(RankActivity::computing, 40, 8));
  HangCatcher hang;
  Watchdog watchdog(options_for(dir, 0), hang.handler());
  watchdog.step_started(3, 2, 14);
  watchdog.set_activity(RankActivity::computing);
  watchdog.step_finished();
  for (int i = 0; i < 40; ++i) {
    watchdog.collective_started("earlier");
    watchdog.collective_finished();
  }
  const auto start = Clock::now();
  watchdog.collective_started("stop agreement");
  const std::string report = hang.wait(5);
  const double waited = seconds_since(start);
  ASSERT_FALSE(report.empty()) << "no report within 5 s";
  EXPECT_GE(waited, 0.3);
  EXPECT_LT(waited, 2.0);
  EXPECT_NE(report.find("collective \"stop agreement\" (collective 41"), std::string::npos)
      << report;
  EXPECT_NE(report.find("distributed.collective_timeout_seconds = 0.3"), std::string::npos)
      << report;
  EXPECT_NE(report.find("rank 1 (pid 4242 on node-b): not arrived; silent for 8"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("stopped, hung or dead"), std::string::npos) << report;
  EXPECT_NE(report.find("computing for 0.0 s then"), std::string::npos) << report;
  EXPECT_NE(report.find("epoch 3, step 2 (global step 14), after 40 collectives"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("exit 4"), std::string::npos) << report;
}

TEST(Watchdog, a_live_peer_that_validates_is_waited_for_until_it_falls_silent) {
  const std::string dir = scratch_dir("watchdog-validating-peer");
  HangCatcher hang;
  Watchdog waiting(options_for(dir, 0), hang.handler());
  auto validating = std::make_unique<Watchdog>(options_for(dir, 1), [](const std::string&) {});
  validating->set_activity(RankActivity::validating);
  waiting.step_finished();
  waiting.collective_started("stop agreement");
  EXPECT_EQ(hang.wait(1.5), "") << "reported although rank 1 was alive and validating";

  validating.reset();  // rank 1 stops publishing: stale after 2 s (kMinStaleSeconds)
  const auto silent_since = Clock::now();
  const std::string report = hang.wait(6);
  ASSERT_FALSE(report.empty());
  EXPECT_GT(seconds_since(silent_since), 1.5);
  EXPECT_NE(report.find("rank 1 (pid " + std::to_string(getpid())), std::string::npos) << report;
  EXPECT_NE(report.find("silent for"), std::string::npos) << report;
  EXPECT_NE(report.find("validating for"), std::string::npos) << report;
}

TEST(Watchdog, when_every_rank_has_arrived_the_collective_itself_is_named_stuck) {
  const std::string dir = scratch_dir("watchdog-all-arrived");
  HangCatcher hang;
  Watchdog other(options_for(dir, 1, 30, 30), [](const std::string&) {});
  Watchdog waiting(options_for(dir, 0), hang.handler());
  waiting.step_finished();
  other.collective_started("step patch count");
  waiting.collective_started("step patch count");
  const std::string report = hang.wait(5);
  EXPECT_NE(report.find("every other rank (1) has arrived: the collective itself is stuck"),
            std::string::npos)
      << report;
}

TEST(Watchdog, a_peer_of_another_launch_counts_as_no_record) {
  const std::string dir = scratch_dir("watchdog-other-launch");
  RankProgress old = peer_record(RankActivity::validating, 1000, 0);
  old.instance = "an-earlier-launch";
  ProgressTable(dir + "/progress").publish(old);
  HangCatcher hang;
  Watchdog waiting(options_for(dir, 0), hang.handler());
  waiting.step_finished();
  waiting.collective_started("stop agreement");
  const std::string report = hang.wait(5);
  EXPECT_NE(report.find("rank 1: no record from this launch"), std::string::npos) << report;
}

TEST(Watchdog, a_step_computing_too_long_is_reported_with_the_first_step_allowance_first) {
  const std::string dir = scratch_dir("watchdog-computing");
  HangCatcher first_hang;
  {
    Watchdog watchdog(options_for(dir, 0, /*timeout=*/0.1, /*first_step_timeout=*/0.8),
                      first_hang.handler());
    watchdog.step_started(1, 1, 1);
    const auto start = Clock::now();
    watchdog.set_activity(RankActivity::computing);
    const std::string report = first_hang.wait(5);
    EXPECT_GE(seconds_since(start), 0.8) << "the first step has the longer allowance";
    EXPECT_NE(report.find("epoch 1, step 1 (global step 1) has been computing for"),
              std::string::npos)
        << report;
    EXPECT_NE(report.find("distributed.first_step_timeout_seconds = 0.8"), std::string::npos)
        << report;
  }
  HangCatcher later_hang;
  Watchdog watchdog(options_for(dir, 0, 0.1, 0.8), later_hang.handler());
  watchdog.step_started(1, 1, 1);
  watchdog.step_finished();
  watchdog.step_started(1, 2, 2);
  const auto start = Clock::now();
  watchdog.set_activity(RankActivity::computing);
  const std::string report = later_hang.wait(5);
  EXPECT_LT(seconds_since(start), 0.7);
  EXPECT_NE(report.find("distributed.collective_timeout_seconds = 0.1"), std::string::npos)
      << report;
}

TEST(Watchdog, waiting_for_data_and_validating_have_no_deadline_of_their_own) {
  const std::string dir = scratch_dir("watchdog-no-deadline");
  HangCatcher hang;
  Watchdog watchdog(options_for(dir, 0, 0.1, 0.1), hang.handler());
  watchdog.step_started(1, 1, 1);  // waiting for data
  EXPECT_EQ(hang.wait(0.6), "");
  watchdog.set_activity(RankActivity::validating);
  EXPECT_EQ(hang.wait(0.6), "");
}

}  // namespace
}  // namespace hds::trainer

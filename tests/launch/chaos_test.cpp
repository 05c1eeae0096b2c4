// A seeded run of faults against a whole `hds-launch local --max-restarts` job: ranks and the data
// service killed (SIGKILL) and stopped (SIGSTOP, never continued), one after another once the job
// trains again. The job must end with exit 0, the final weights of an uninterrupted run bit for
// bit, and nothing left behind; each fault is bounded in time. What each fault cost (detection,
// restart, steps redone) is printed and written to <scratch>/chaos-costs.txt (RESULTS.md records a
// run). HDS_CHAOS_SEED picks another sequence.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "launch_test_support.h"

namespace hds::launch {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kJobSeconds = 300;
// A fault must be noticed and mended within this (collective_timeout 3 s, service_timeout 2 s,
// a restart loads the phantom dataset again).
constexpr double kFaultSeconds = 60;
constexpr int kFaults = 5;

enum class Fault { kill_rank, stop_rank, kill_service, stop_service };

const char* fault_name(Fault fault) {
  switch (fault) {
    case Fault::kill_rank:
      return "SIGKILL rank";
    case Fault::stop_rank:
      return "SIGSTOP rank";
    case Fault::kill_service:
      return "SIGKILL data service";
    case Fault::stop_service:
      return "SIGSTOP data service";
  }
  return "?";
}

// Every kind once and one more drawn, in a seeded order.
std::vector<Fault> fault_sequence(std::mt19937& random) {
  std::vector<Fault> faults = {Fault::kill_rank, Fault::stop_rank, Fault::kill_service,
                               Fault::stop_service};
  faults.push_back(faults[std::uniform_int_distribution<size_t>(0, 3)(random)]);
  std::shuffle(faults.begin(), faults.end(), random);
  return faults;
}

pid_t service_of(pid_t launcher) {
  for (pid_t pid : descendants_of(launcher)) {
    if (command_name(pid) == "hds-data-servic") return pid;  // comm holds 15 characters
  }
  return -1;
}

int count_matches(const std::string& text, const std::regex& pattern) {
  return static_cast<int>(std::distance(std::sregex_iterator(text.begin(), text.end(), pattern),
                                        std::sregex_iterator()));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST(Chaos, a_seeded_run_of_kills_and_stops_ends_with_the_clean_runs_weights) {
  if (const auto why = testing::why_jobs_cannot_run()) GTEST_SKIP() << *why;
  const char* seed_text = std::getenv("HDS_CHAOS_SEED");
  const unsigned seed = seed_text ? static_cast<unsigned>(std::stoul(seed_text)) : 20261202u;
  std::mt19937 random(seed);
  constexpr int kEpochs = 150;
  const std::vector<std::string> limits = {"--set", "distributed.collective_timeout_seconds=3",
                                           "--set", "data.service_timeout_seconds=2"};

  const std::string clean_dir = testing::scratch_dir("chaos-clean");
  testing::write_tiny_job(clean_dir, kEpochs, /*checkpoint_every=*/1);
  testing::Command clean(
      testing::two_rank_local_job(clean_dir + "/job.pbtxt",
                                  "chaos-clean-" + std::to_string(getpid()), limits),
      clean_dir + "/launch.log");
  ASSERT_EQ(clean.wait_exit(kJobSeconds), 0) << clean.output();

  const std::set<std::string> shared_memory = testing::shared_memory_entries();
  const std::string dir = testing::scratch_dir("chaos");
  testing::write_tiny_job(dir, kEpochs, /*checkpoint_every=*/1);
  const std::string job = "chaos-" + std::to_string(getpid());
  std::vector<std::string> extra = {"--max-restarts", std::to_string(kFaults)};
  extra.insert(extra.end(), limits.begin(), limits.end());
  testing::Command run(testing::two_rank_local_job(dir + "/job.pbtxt", job, extra),
                       dir + "/launch.log");
  ASSERT_TRUE(run.wait_for_output(R"(epoch 3/\d+ step)", kJobSeconds)) << run.output();

  std::ostringstream costs;
  costs << "seed " << seed << "\n"
        << "fault | detected after (s) | training again after (s) | steps redone\n";
  const std::regex back(R"(restart \d+/\d+: training again)");
  const std::vector<Fault> faults = fault_sequence(random);
  for (int i = 1; i <= kFaults; ++i) {
    const Fault fault = faults[static_cast<size_t>(i - 1)];
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 1500)(random)));
    const int rank = std::uniform_int_distribution<int>(0, 1)(random);
    pid_t target = -1;
    if (fault == Fault::kill_rank || fault == Fault::stop_rank) {
      target = testing::trainer_rank(run.pid(), rank);
    } else {
      target = service_of(run.pid());
    }
    ASSERT_GT(target, 0) << "fault " << i << " (" << fault_name(fault) << ") found no target\n"
                         << run.output();
    const bool stop = fault == Fault::stop_rank || fault == Fault::stop_service;
    const auto injected = Clock::now();
    ::kill(target, stop ? SIGSTOP : SIGKILL);

    const std::string restart = "restart " + std::to_string(i) + "/" + std::to_string(kFaults);
    ASSERT_TRUE(run.wait_for_output(restart + "[ :]", kFaultSeconds))
        << "fault " << i << " (" << fault_name(fault) << ") not acted on within " << kFaultSeconds
        << " s\n"
        << run.output();
    const double detected = seconds_since(injected);
    const auto recovered = run.wait_for_output(
        restart + R"(: training again ([0-9.]+) s after the failure.*: (\d+) steps redone)",
        kFaultSeconds);
    ASSERT_TRUE(recovered) << "fault " << i << " (" << fault_name(fault) << ") not mended within "
                           << kFaultSeconds << " s\n"
                           << run.output();
    costs << fault_name(fault)
          << (fault == Fault::kill_rank || fault == Fault::stop_rank ? " " + std::to_string(rank)
                                                                     : std::string())
          << " | " << std::fixed << std::setprecision(1) << detected << " | "
          << std::stod((*recovered)[1].str()) + detected << " | " << (*recovered)[2].str() << "\n";
    EXPECT_EQ(count_matches(run.output(), back), i) << "one restart per fault";
  }

  ASSERT_EQ(run.wait_exit(kJobSeconds), 0) << run.output();
  std::cout << costs.str();
  testing::write_text(dir + "/chaos-costs.txt", costs.str());
  EXPECT_TRUE(testing::read_text(dir + "/run/checkpoints/latest/model.pt") ==
              testing::read_text(clean_dir + "/run/checkpoints/latest/model.pt"))
      << "the final weights differ from the uninterrupted run's";
  EXPECT_EQ(nlohmann::json::parse(testing::read_text(dir + "/run/summary.json"))["global_step"]
                .get<int>(),
            kEpochs * 2);
  testing::expect_nothing_left(job);
  testing::expect_no_new_shared_memory(shared_memory);
}

}  // namespace
}  // namespace hds::launch

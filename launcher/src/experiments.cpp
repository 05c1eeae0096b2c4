#include "hds/launch/experiments.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <regex>
#include <sstream>

#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/launch/local_launch.h"
#include "hds/launch/process.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

// The CUDA devices this process may use: CUDA_VISIBLE_DEVICES's list, else the /dev/nvidiaN
// device files.
std::vector<std::string> cuda_devices() {
  std::vector<std::string> devices;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    std::string list = visible, item;
    std::istringstream items(list);
    while (std::getline(items, item, ','))
      if (!item.empty()) devices.push_back(item);
    return devices;
  }
  std::error_code ec;
  const std::regex device_file("nvidia([0-9]+)");
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, device_file)) devices.push_back(match[1]);
  }
  std::sort(devices.begin(), devices.end(),
            [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); });
  return devices;
}

bool on_cuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

// What one slot (one run at a time) may use: its devices, its metrics ports, its threads.
struct Slot {
  std::vector<std::string> cuda_devices;  // empty on CPU
  int metrics_port = 0;                   // of its local rank 0; 0 = export off
  int threads = 0;                        // per rank; 0 = the configuration's choice
};

class ExperimentSet {
 public:
  ExperimentSet(const std::vector<ExperimentRun>& runs, const ExperimentOptions& options,
                std::ostream& messages)
      : runs_(runs),
        options_(options),
        messages_(messages),
        config_(hds::config::load_config(options.config_path, options.overrides)) {
    if (options.ranks < 1) throw UsageError("--np must be at least 1");
    if (options.parallel < 0) throw UsageError("--parallel must be at least 0");
    if (!options_.init_from.empty()) {
      options_.init_from = checkpoint_argument("--init-from", options_.init_from);
    }
    const int parallel = options.parallel > 0
                             ? std::min<int>(options.parallel, std::max<size_t>(runs.size(), 1))
                             : default_parallel_runs(config_.train().device(), options.ranks,
                                                     static_cast<int>(runs.size()));
    plan_slots(parallel);
  }

  int run() {
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (fs::exists(evaluation_file(runs_[i]))) {
        say(runs_[i].name + ": already evaluated (" + evaluation_file(runs_[i]) + ")");
      } else {
        pending_.push_back(i);
      }
    }
    say(std::to_string(pending_.size()) + " of " + std::to_string(runs_.size()) +
        " run(s) to do, " + std::to_string(slots_.size()) + " at a time");
    while (!pending_.empty() || !active_.empty()) {
      while (!stopping_ && !pending_.empty() && active_.size() < slots_.size()) start_next();
      if (active_.empty()) break;  // stopping with runs never started
      pollfd watched{signals_.fd(), POLLIN, 0};
      ::poll(&watched, 1, 200);
      for (int number : signals_.take()) on_signal(number);
      std::vector<Process*> known;
      for (Active& a : active_) known.push_back(&a.process);
      reap_children(known);
      std::vector<Active> next_stages;
      for (size_t k = 0; k < active_.size();) {
        if (active_[k].process.running()) {
          ++k;
          continue;
        }
        if (std::optional<Active> next = finish(active_[k]))
          next_stages.push_back(std::move(*next));
        active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(k));
      }
      for (Active& next : next_stages) active_.push_back(std::move(next));
    }
    if (first_failure_ != 0) return first_failure_;
    if (stopping_) {
      say("stopped; the same command resumes: finished runs are kept, the others go on from "
          "their latest checkpoint");
      return hds::common::kExitStopped;
    }
    return hds::common::kExitFinished;
  }

 private:
  enum class Stage { kTrain, kEvaluate };
  struct Active {
    size_t run = 0;
    size_t slot = 0;
    Stage stage = Stage::kTrain;
    Process process;
  };

  void say(const std::string& text) { messages_ << "hds-launch: " << text << std::endl; }

  std::string log_of(const ExperimentRun& run) const {
    return (fs::path(run.output_dir) / "run.log").string();
  }

  void plan_slots(int parallel) {
    const bool cuda = on_cuda(config_.train().device());
    const std::vector<std::string> devices = cuda ? cuda_devices() : std::vector<std::string>{};
    const int base_port = config_.monitoring().metrics_port();
    // Ranks of one job read train.threads; several jobs at once share the cores out.
    const int threads = !cuda && config_.train().threads() == 0 && parallel > 1
                            ? std::max(1, physical_cores() / (parallel * options_.ranks))
                            : 0;
    for (int s = 0; s < parallel; ++s) {
      Slot slot;
      for (int r = 0; r < options_.ranks; ++r) {
        const size_t at = static_cast<size_t>(s * options_.ranks + r);
        if (at < devices.size()) slot.cuda_devices.push_back(devices[at]);
      }
      slot.metrics_port = base_port == 0 ? 0 : base_port + s * options_.ranks;
      slot.threads = threads;
      slots_.push_back(slot);
    }
  }

  // The --set values of `run` in `slot`, after the user's.
  std::vector<std::string> overrides(const ExperimentRun& run, const Slot& slot) const {
    std::vector<std::string> values = options_.overrides;
    values.insert(values.end(), run.overrides.begin(), run.overrides.end());
    values.push_back("train.output_dir=" + run.output_dir);
    values.push_back("monitoring.metrics_port=" + std::to_string(slot.metrics_port));
    if (slot.threads > 0) values.push_back("train.threads=" + std::to_string(slot.threads));
    return values;
  }

  std::vector<std::string> train_command(const ExperimentRun& run, const Slot& slot) const {
    std::vector<std::string> argv = {
        options_.launcher,    "local",          "--config",
        options_.config_path, "--np",           std::to_string(options_.ranks),
        "--resume",           "auto",           "--trainer",
        options_.trainer,     "--data-service", options_.data_service,
        "--mpirun",           options_.mpirun};
    for (const std::string& value : overrides(run, slot)) {
      argv.push_back("--set");
      argv.push_back(value);
    }
    if (!options_.init_from.empty()) argv.insert(argv.end(), {"--init-from", options_.init_from});
    if (!slot.cuda_devices.empty()) {
      std::string list;
      for (const std::string& d : slot.cuda_devices) list += (list.empty() ? "" : ",") + d;
      argv.push_back("--mpirun-arg=-x");
      argv.push_back("--mpirun-arg=CUDA_VISIBLE_DEVICES=" + list);
    }
    return argv;
  }

  std::vector<std::string> evaluate_command(const ExperimentRun& run, const Slot& slot) const {
    const fs::path checkpoints = fs::path(run.output_dir) / "checkpoints";
    const fs::path best = checkpoints / "best-dice";
    std::vector<std::string> argv = {
        options_.trainer, "eval",
        "--checkpoint",   (fs::exists(best) ? best : checkpoints / "latest").string(),
        "--split",        "test",
        "--bootstrap",    std::to_string(options_.bootstrap_rounds),
        "--out",          (fs::path(run.output_dir) / "eval").string()};
    if (slot.threads > 0) {
      argv.push_back("--set");
      argv.push_back("train.threads=" + std::to_string(slot.threads));
    }
    return argv;
  }

  void spawn(Active& active, const std::vector<std::string>& argv) {
    const ExperimentRun& run = runs_[active.run];
    {
      std::ofstream log(log_of(run), std::ios::app);
      log << "==== hds-launch:";
      for (const std::string& word : argv) log << " " << shell_quote(word);
      log << " ====" << std::endl;
    }
    SpawnOptions spawn;
    spawn.output_file = log_of(run);
    spawn.parent_death_signal = SIGTERM;  // a job stops with a checkpoint if we die
    active.process = Process::spawn(argv, spawn);
  }

  void start_next() {
    std::vector<bool> busy(slots_.size(), false);
    for (const Active& a : active_) busy[a.slot] = true;
    Active active;
    active.run = pending_.front();
    active.slot = static_cast<size_t>(std::find(busy.begin(), busy.end(), false) - busy.begin());
    pending_.erase(pending_.begin());
    const ExperimentRun& run = runs_[active.run];
    std::error_code ec;
    fs::create_directories(run.output_dir, ec);
    if (ec) throw LaunchError(run.output_dir + ": cannot create the run's folder: " + ec.message());
    spawn(active, train_command(run, slots_[active.slot]));
    say(run.name + ": training (" + std::to_string(options_.ranks) + " rank(s)" +
        (slots_[active.slot].cuda_devices.empty()
             ? ""
             : ", CUDA devices " + std::to_string(slots_[active.slot].cuda_devices.size())) +
        "); log " + log_of(run));
    active_.push_back(std::move(active));
  }

  void on_signal(int number) {
    if (!stopping_) {
      stopping_ = true;
      say("signal " + std::to_string(number) +
          ": asking every running job to stop with a checkpoint; no new run starts (signal "
          "again to stop at once)");
    } else {
      say("signal " + std::to_string(number) + " again: stopping every job at once");
    }
    // hds-launch local takes a first SIGTERM as "stop with a checkpoint" and a second as "now";
    // an evaluation has nothing to keep and is simply run again.
    for (Active& a : active_) a.process.signal(SIGTERM);
  }

  // Reports how `active` ended; returns the run's next stage when there is one.
  std::optional<Active> finish(const Active& active) {
    const ExperimentRun& run = runs_[active.run];
    const int status = active.process.wait_status();
    const int code = exit_code_of(status);
    if (code == hds::common::kExitFinished && !stopping_) {
      if (active.stage == Stage::kTrain) {
        say(run.name + ": trained; evaluating on the test split");
        Active next;
        next.run = active.run;
        next.slot = active.slot;
        next.stage = Stage::kEvaluate;
        spawn(next, evaluate_command(run, slots_[active.slot]));
        return next;
      }
      say(run.name + ": evaluated (" + evaluation_file(run) + ")");
      return std::nullopt;
    }
    if (stopping_ && (code == hds::common::kExitStopped || code == hds::common::kExitFinished ||
                      WIFSIGNALED(status))) {
      say(run.name + ": stopped (" + describe_wait_status(status) + ")");
      return std::nullopt;
    }
    say(run.name + ": " + (active.stage == Stage::kTrain ? "training" : "evaluation") + " " +
        describe_wait_status(status) + "; its log " + log_of(run) + " ends:\n" +
        last_lines(log_of(run), 15));
    if (first_failure_ == 0) first_failure_ = code == 0 ? hds::common::kExitError : code;
    return std::nullopt;
  }

  const std::vector<ExperimentRun>& runs_;
  ExperimentOptions options_;  // a copy: --init-from made absolute
  std::ostream& messages_;
  const hds::config::Config config_;
  std::vector<Slot> slots_;
  std::vector<size_t> pending_;
  std::vector<Active> active_;
  hds::common::CaughtSignals signals_ = catch_stop_signals();
  bool stopping_ = false;
  int first_failure_ = 0;
};

}  // namespace

std::string evaluation_file(const ExperimentRun& run) {
  return (fs::path(run.output_dir) / "eval" / "metrics.json").string();
}

int default_parallel_runs(const std::string& device, int ranks, int runs) {
  const int capacity =
      on_cuda(device) ? static_cast<int>(cuda_devices().size()) / ranks : physical_cores() / ranks;
  return std::max(1, std::min(capacity, runs));
}

int run_experiments(const std::vector<ExperimentRun>& runs, const ExperimentOptions& options,
                    std::ostream& messages) {
  return ExperimentSet(runs, options, messages).run();
}

}  // namespace hds::launch

// `hds-trainer fit` (commands.h), and how the binary reports errors: fit and bench start the
// ranks, whose failures end the job with one code.
#include <c10/util/Exception.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <ostream>

#include "commands.h"
#include "hds/common/exit_codes.h"
#include "hds/common/signals.h"
#include "hds/config/config.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/metrics.h"
#include "hds/trainer/progress.h"
#include "hds/trainer/training.h"
#include "hds/trainer/training_history.h"

namespace hds::trainer {

namespace {

// "auto": the run's newest intact checkpoint (choose_auto_resume) when it has any (a requeued
// job), else a fresh start. Rank 0 says why when that is not `latest`'s.
std::string resume_path(const hds::config::Config& config, const std::string& resume,
                        const World& world, std::ostream& out) {
  if (resume != "auto") return resume;
  const AutoResume choice = choose_auto_resume(
      (std::filesystem::path(config.train().output_dir()) / "checkpoints").string());
  if (!choice.note.empty() && world.is_root()) out << "warning: " << choice.note << std::endl;
  return choice.checkpoint;
}

void print_summary(const FitResult& result, std::ostream& out) {
  auto line = [&](const char* what, const hds::checkpoint::ValidationResult& v) {
    out << what << ": epoch " << v.epoch() << " dice " << v.dice() << " accuracy " << v.accuracy()
        << " auc " << v.auc() << "\n";
  };
  out << "summary: " << result.completed_epochs << " epochs, " << result.global_step
      << " steps, last loss " << result.last_loss << "\n";
  if (result.last_validation.has_epoch()) {
    line("last validation", result.last_validation);
    line("best dice", result.best_dice);
    line("best accuracy", result.best_accuracy);
  }
  out << "checkpoint: " << result.last_checkpoint << "\n";
}

}  // namespace

hds::common::MainOptions trainer_main_options(const std::unique_ptr<World>& world) {
  hds::common::MainOptions options;
  options.classify = [](const std::exception& error) -> hds::common::Failure {
    if (dynamic_cast<const NonFiniteLossError*>(&error) != nullptr) {
      return {hds::common::kExitNonFiniteLoss, "training stopped: "};
    }
    if (dynamic_cast<const CollectiveError*>(&error) != nullptr) {
      return {hds::common::kExitRankLost, "a rank was lost: "};
    }
    if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error)) {
      return {hds::common::kExitError, "error: ", torch_error->what_without_backtrace()};
    }
    return hds::common::classify_failure(error);
  };
  const auto distributed = [&world] { return world && world->size() > 1; };
  options.context = [&world, distributed] {
    return distributed() ? world->describe() + ": " : std::string();
  };
  // Instead of finalising MPI, which would wait for ranks that may never come.
  options.on_failure = [&world, distributed](int code) {
    if (distributed()) world->abort(code);
  };
  return options;
}

int run_fit_command(const hds::config::Config& config, const FitCommand& command,
                    const World& world, std::ostream& out) {
  // SIGTERM or SIGUSR1 (forwarded by the launcher): stop with a checkpoint at an agreed step;
  // SIGUSR2: that stop is overdue (rank 0 writes its last completed step's checkpoint).
  const hds::common::CaughtSignals signals({SIGTERM, SIGUSR1, SIGUSR2});
  FitOptions options;
  options.world = &world;
  options.resume_from = resume_path(config, command.resume, world, out);
  options.init_from = command.init_from;
  options.stop_at_step = command.stop_at_step;
  options.stop_requested = [&signals] {
    return signals.received(SIGTERM) || signals.received(SIGUSR1);
  };
  options.stop_overdue = [&signals] { return signals.received(SIGUSR2); };
  // Every rank serves its own metrics (port + local rank) for as long as it trains; rank 0 also
  // shows the progress and keeps the history and curves.svg.
  std::unique_ptr<TrainerMetrics> metrics;
  if (config.monitoring().metrics_port() != 0) {
    metrics = std::make_unique<TrainerMetrics>(
        config.monitoring(), RankIdentity{world.rank(), world.local_rank(), world.size()});
  }
  std::unique_ptr<ProgressDisplay> progress;
  std::unique_ptr<TrainingHistory> history;
  if (world.is_root()) {
    progress = std::make_unique<ProgressDisplay>(
        out, choose_progress_style(command.progress, STDOUT_FILENO), config.train().epochs(),
        config.train().log_every_steps());
    options.log = &progress->stream();
    std::filesystem::create_directories(config.train().output_dir());
    history = std::make_unique<TrainingHistory>(config.train().output_dir(),
                                                config.train().log_every_steps());
    *options.log << "metrics: "
                 << hds::config::describe_metrics_endpoints(config.monitoring(), world.local_size())
                 << (metrics && world.size() > world.local_size() ? " on every node" : "")
                 << "\ncurves: " << history->curves_path() << " (redrawn at each validation)"
                 << std::endl;
  }
  for (TrainingObserver* observer :
       std::initializer_list<TrainingObserver*>{metrics.get(), progress.get(), history.get()}) {
    if (observer) options.observers.push_back(observer);
  }
  const FitResult result = fit(config, options);
  history.reset();  // its last interval and curves.svg first: the summary names them
  if (progress) print_summary(result, progress->stream());
  return result.finished ? hds::common::kExitFinished : hds::common::kExitStopped;
}

namespace {

CLI::App* add_fit_options(CLI::App& app, std::string& config_path,
                          std::vector<std::string>& overrides, FitCommand& fit) {
  CLI::App* command = app.add_subcommand("fit", "train");
  hds::common::add_config_options(*command, config_path, overrides);
  command->add_option("--resume", fit.resume,
                      "checkpoint directory, run checkpoints root, or auto (the run's latest "
                      "checkpoint when there is one)");
  command->add_option("--init-from", fit.init_from,
                      "start a new schedule (epoch 1, fresh optimizer) from the weights of this "
                      "checkpoint (directory or a run's checkpoints root); unused when --resume "
                      "continues this run");
  command
      ->add_option("--progress", fit.progress,
                   "Step progress: bar (one line redrawn in place), lines (a line every "
                   "train.log_every_steps steps), or auto (bar on a terminal)")
      ->check(CLI::IsMember({"auto", "bar", "lines"}))
      ->capture_default_str();
  command->add_option("--stop-at-step", fit.stop_at_step,
                      "write a checkpoint and stop after this global step");
  return command;
}

}  // namespace

hds::common::Subcommand add_fit_command(CLI::App& app, std::unique_ptr<World>& world,
                                        std::ostream& out) {
  struct State {
    std::string config_path;
    std::vector<std::string> overrides;
    FitCommand fit;
  };
  auto state = std::make_shared<State>();
  return {add_fit_options(app, state->config_path, state->overrides, state->fit),
          [state, &world, &out] {
            const hds::config::Config config =
                hds::config::load_config_or_paper(state->config_path, state->overrides);
            world = World::from_environment();
            return run_fit_command(config, state->fit, *world, out);
          }};
}

}  // namespace hds::trainer

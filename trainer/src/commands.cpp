#include "hds/trainer/commands.h"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <ostream>

#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/export.h"
#include "hds/trainer/metrics.h"
#include "hds/trainer/model.h"
#include "hds/trainer/training.h"

namespace hds::trainer {

namespace {

std::atomic<bool> stop_signal{false};
extern "C" void request_stop(int) { stop_signal = true; }

// "auto": the run's latest checkpoint when there is one (a requeued job), else a fresh start.
std::string resume_path(const hds::config::Config& config, const std::string& resume) {
  if (resume != "auto") return resume;
  const std::filesystem::path latest =
      std::filesystem::path(config.train().output_dir()) / "checkpoints" / "latest";
  return std::filesystem::exists(latest) ? latest.string() : "";
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

void run_describe_command(const hds::config::Config& config, std::ostream& out) {
  HdsNet model(config.model());
  out << describe_modules(*model);
  const auto [train_rows, train_cols] =
      HdsNetImpl::cls_map_size(config.data().patch_rows(), config.data().patch_cols());
  const auto [test_rows, test_cols] =
      HdsNetImpl::cls_map_size(config.data().image_rows(), config.data().image_cols());
  out << "parameters: " << count_parameters(*model) << "\n"
      << "trunk_conv3x3: " << count_convs(*model->named_children()["trunk"], 3) << "\n"
      << "conv3x3: " << count_convs(*model, 3) << "\n"
      << "cls_map_train: " << train_rows << "x" << train_cols << "\n"
      << "cls_map_test: " << test_rows << "x" << test_cols << "\n";
}

int run_fit_command(const hds::config::Config& config, const FitCommand& command,
                    const World& world, std::ostream& out) {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
  FitOptions options;
  options.world = &world;
  options.resume_from = resume_path(config, command.resume);
  options.stop_at_step = command.stop_at_step;
  options.stop_requested = [] { return stop_signal.load(); };
  options.log = &out;
  // Every rank serves its own metrics (port + local rank) for as long as it trains.
  std::unique_ptr<TrainerMetrics> metrics;
  if (config.monitoring().metrics_port() != 0) {
    metrics = std::make_unique<TrainerMetrics>(
        config.monitoring(), RankIdentity{world.rank(), world.local_rank(), world.size()});
    options.on_step = [&](const StepReport& step) { metrics->record_step(step); };
    options.on_validation = [&](const hds::checkpoint::ValidationResult& validation) {
      metrics->record_validation(validation);
    };
    options.on_checkpoint = [&](double seconds) { metrics->record_checkpoint(seconds); };
  }
  if (world.is_root()) {
    out << "metrics: "
        << hds::config::describe_metrics_endpoints(config.monitoring(), world.local_size())
        << (metrics && world.size() > world.local_size() ? " on every node" : "") << std::endl;
  }
  const FitResult result = fit(config, options);
  if (world.is_root()) print_summary(result, out);
  return result.finished ? hds::common::kExitFinished : hds::common::kExitStopped;
}

void run_export_command(const ExportCommand& command, std::ostream& out) {
  if (command.checkpoint.empty() == !command.init) {
    throw hds::config::ConfigError("export: give --checkpoint DIR or --init [--config FILE]");
  }
  hds::config::Config config;
  if (command.init) {
    config = hds::config::load_config_or_paper(command.config_path, command.overrides);
    torch::manual_seed(config.train().seed());
  } else {
    config = saved_config(read_checkpoint_meta(command.checkpoint), command.checkpoint);
  }
  HdsNet model(config.model());
  if (!command.init) load_checkpoint(command.checkpoint, model, nullptr);
  const auto layout =
      command.layout == "reference" ? ExportLayout::kReference : ExportLayout::kNative;
  export_model(model, config, command.out, layout, command.probe);
  out << "wrote " << command.out << " (" << command.layout << " layout"
      << (command.probe ? ", with probe" : "") << ")\n";
}

void run_bench_command(const hds::config::Config& config, const BenchOptions& options,
                       const World& world, std::ostream& out) {
  const BenchResult result = bench_training_step(config, options, world);
  if (world.is_root()) out << to_json_line(options, result) << std::endl;
}

}  // namespace hds::trainer

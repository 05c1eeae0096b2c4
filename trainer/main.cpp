// hds-trainer: describe | fit | export | bench. Thin: parses the command line and calls the
// hds_trainer library. Exit codes: 0 done, 1 error, 2 bad command line or configuration,
// 3 non-finite loss, 75 stopped on request (SIGTERM/SIGUSR1) with a checkpoint written.
// Started by mpirun or `srun --mpi=pmix`, `fit` and `bench` are one rank of a data-parallel job
// (world.h); an error on any rank then ends every rank with that rank's exit code.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <memory>
#include <iostream>

#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/trainer/bench.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/cpu_allocator.h"
#include "hds/trainer/export.h"
#include "hds/trainer/metrics.h"
#include "hds/trainer/model.h"
#include "hds/trainer/training.h"
#include "hds/trainer/world.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNonFiniteLoss = 3;
constexpr int kExitStopped = 75;

std::atomic<bool> stop_signal{false};
extern "C" void request_stop(int) { stop_signal = true; }

hds::config::Config load(const std::string& path, const std::vector<std::string>& overrides) {
  return path.empty() ? hds::config::parse_config("", "<paper defaults>", overrides)
                      : hds::config::load_config(path, overrides);
}

int describe(const hds::config::Config& config) {
  hds::trainer::HdsNet model(config.model());
  std::cout << hds::trainer::describe_modules(*model);
  const auto [train_rows, train_cols] = hds::trainer::HdsNetImpl::cls_map_size(
      config.data().patch_rows(), config.data().patch_cols());
  const auto [test_rows, test_cols] = hds::trainer::HdsNetImpl::cls_map_size(
      config.data().image_rows(), config.data().image_cols());
  std::cout << "parameters: " << hds::trainer::count_parameters(*model) << "\n"
            << "trunk_conv3x3: "
            << hds::trainer::count_convs(*model->named_children()["trunk"], 3) << "\n"
            << "conv3x3: " << hds::trainer::count_convs(*model, 3) << "\n"
            << "cls_map_train: " << train_rows << "x" << train_cols << "\n"
            << "cls_map_test: " << test_rows << "x" << test_cols << "\n";
  return 0;
}

// "auto": the run's latest checkpoint when there is one (a requeued job), else a fresh start.
std::string resume_path(const hds::config::Config& config, const std::string& resume) {
  if (resume != "auto") return resume;
  const std::filesystem::path latest =
      std::filesystem::path(config.train().output_dir()) / "checkpoints" / "latest";
  return std::filesystem::exists(latest) ? latest.string() : "";
}

int fit(const hds::config::Config& config, const std::string& resume, int64_t stop_at_step,
        const hds::trainer::World& world) {
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);
  hds::trainer::FitOptions options;
  options.world = &world;
  options.resume_from = resume_path(config, resume);
  options.stop_at_step = stop_at_step;
  options.stop_requested = [] { return stop_signal.load(); };
  // Every rank serves its own metrics (port + local rank) for as long as it trains.
  std::unique_ptr<hds::trainer::TrainerMetrics> metrics;
  if (config.monitoring().metrics_port() != 0) {
    metrics = std::make_unique<hds::trainer::TrainerMetrics>(
        config.monitoring(),
        hds::trainer::RankIdentity{world.rank(), world.local_rank(), world.size()});
    options.on_step = [&](const hds::trainer::StepReport& step) { metrics->record_step(step); };
    options.on_validation = [&](const hds::checkpoint::ValidationResult& validation) {
      metrics->record_validation(validation);
    };
    options.on_checkpoint = [&](double seconds) { metrics->record_checkpoint(seconds); };
  }
  if (world.is_root()) {
    std::cout << "metrics: "
              << hds::config::describe_metrics_endpoints(config.monitoring(), world.local_size())
              << (metrics && world.size() > world.local_size() ? " on every node" : "")
              << std::endl;
  }
  const auto result = hds::trainer::fit(config, options);
  if (!world.is_root()) return result.finished ? 0 : kExitStopped;
  auto line = [](const char* what, const hds::checkpoint::ValidationResult& v) {
    std::cout << what << ": epoch " << v.epoch() << " dice " << v.dice() << " accuracy "
              << v.accuracy() << " auc " << v.auc() << "\n";
  };
  std::cout << "summary: " << result.completed_epochs << " epochs, " << result.global_step
            << " steps, last loss " << result.last_loss << "\n";
  if (result.last_validation.has_epoch()) {
    line("last validation", result.last_validation);
    line("best dice", result.best_dice);
    line("best accuracy", result.best_accuracy);
  }
  std::cout << "checkpoint: " << result.last_checkpoint << "\n";
  return result.finished ? 0 : kExitStopped;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hds-trainer: train, evaluate and export the HDS U-ResNet"};
  app.require_subcommand(1);
  std::string config_path;
  std::vector<std::string> overrides;
  auto add_config_options = [&](CLI::App* cmd, bool required) {
    auto* option = cmd->add_option("--config", config_path, "configuration (.pbtxt)");
    if (required) option->required();
    cmd->add_option("--set", overrides, "override a field, e.g. train.epochs=5 (repeatable)");
  };

  auto* describe_cmd = app.add_subcommand("describe", "print the model summary and its counts");
  add_config_options(describe_cmd, false);

  auto* fit_cmd = app.add_subcommand("fit", "train");
  add_config_options(fit_cmd, true);
  std::string resume;
  int64_t stop_at_step = 0;
  fit_cmd->add_option("--resume", resume,
                      "checkpoint directory, run checkpoints root, or auto (the run's latest "
                      "checkpoint when there is one)");
  fit_cmd->add_option("--stop-at-step", stop_at_step,
                      "write a checkpoint and stop after this global step");

  auto* export_cmd = app.add_subcommand("export", "write the weights for Python's torch.load");
  std::string checkpoint, out, layout_name = "native";
  bool init = false, probe = false;
  auto* checkpoint_opt = export_cmd->add_option("--checkpoint", checkpoint, "checkpoint directory");
  auto* init_opt = export_cmd->add_flag("--init", init, "a freshly initialised model of --config");
  checkpoint_opt->excludes(init_opt);
  export_cmd->add_option("--config", config_path, "configuration for --init (.pbtxt)");
  export_cmd->add_option("--set", overrides, "override a field (with --init)");
  export_cmd->add_option("--out", out, "output file")->required();
  export_cmd->add_option("--layout", layout_name, "native or reference")
      ->check(CLI::IsMember({"native", "reference"}));
  export_cmd->add_flag("--probe", probe, "add a probe input and the heads' logits for it");

  auto* bench_cmd = app.add_subcommand("bench", "time a full training step");
  add_config_options(bench_cmd, false);
  hds::trainer::BenchOptions bench;
  bench_cmd->add_option("--batch", bench.batch, "patches per step");
  bench_cmd->add_option("--height", bench.height, "patch rows (multiple of 128)");
  bench_cmd->add_option("--width", bench.width, "patch cols (multiple of 128)");
  bench_cmd->add_option("--steps", bench.steps, "timed steps");
  bench_cmd->add_option("--warmup", bench.warmup, "untimed steps first");
  bench_cmd->add_option("--threads", bench.threads, "intra-op threads (0: LibTorch's choice)");
  bench_cmd->add_flag("--sync", bench.sync,
                     "also time the gradient sync over the MPI ranks (run under mpirun)");
  bench_cmd->add_option("--device", bench.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));

  // Before any tensor exists: every step reuses its activations' memory instead of faulting it in.
  hds::trainer::install_caching_cpu_allocator();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  std::unique_ptr<hds::trainer::World> world;
  std::string where;  // "rank r/n: " in a distributed run's error messages
  // After an error in a job of several ranks, the others may wait in a collective for ever:
  // end them all with this rank's code instead of finalising MPI.
  auto finish = [&](int code) {
    if (code != 0 && code != kExitStopped && world && world->size() > 1) world->abort(code);
    return code;
  };
  try {
    if (*describe_cmd) return describe(load(config_path, overrides));
    if (*fit_cmd || *bench_cmd) {
      world = hds::trainer::World::from_environment();
      if (world->size() > 1) where = world->describe() + ": ";
    }
    if (*fit_cmd) return finish(fit(load(config_path, overrides), resume, stop_at_step, *world));
    if (*bench_cmd) {
      const auto result =
          hds::trainer::bench_training_step(load(config_path, overrides), bench, *world);
      if (world->is_root()) std::cout << hds::trainer::to_json(bench, result).dump() << std::endl;
      return 0;
    }
    if (*export_cmd) {
      if (checkpoint.empty() && !init) {
        std::cerr << "export: give --checkpoint DIR or --init --config FILE\n";
        return kExitUsage;
      }
      hds::config::Config config;
      if (init) {
        config = load(config_path, overrides);
        torch::manual_seed(config.train().seed());
      } else {
        const auto meta = hds::trainer::read_checkpoint_meta(checkpoint);
        config = hds::config::parse_config(meta.config_text(), checkpoint + " (saved config)");
      }
      hds::trainer::HdsNet model(config.model());
      if (!init) hds::trainer::load_checkpoint(checkpoint, model, nullptr);
      const auto layout = layout_name == "reference" ? hds::trainer::ExportLayout::kReference
                                                     : hds::trainer::ExportLayout::kNative;
      hds::trainer::export_model(model, config, out, layout, probe);
      std::cout << "wrote " << out << " (" << layout_name << " layout"
                << (probe ? ", with probe" : "") << ")\n";
      return 0;
    }
  } catch (const hds::config::ConfigError& e) {
    std::cerr << where << "configuration error: " << e.what() << "\n";
    return finish(kExitUsage);
  } catch (const hds::trainer::NonFiniteLossError& e) {
    std::cerr << where << "training stopped: " << e.what() << "\n";
    return finish(kExitNonFiniteLoss);
  } catch (const std::exception& e) {
    std::cerr << where << "error: " << e.what() << "\n";
    return finish(kExitError);
  }
  return kExitUsage;
}

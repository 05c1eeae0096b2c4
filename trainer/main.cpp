// hds-trainer: describe | fit | eval | infer | export | bench. Parses the command line and calls
// one function of hds/trainer/commands.h per subcommand; exit codes: hds/common/exit_codes.h.
// Under mpirun or `srun --mpi=pmix`, `fit` and `bench` are one rank of a data-parallel job.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "commands.h"
#include "cpu_allocator.h"
#include "hds/common/command_line.h"
#include "hds/common/exit_codes.h"
#include "hds/config/config.h"

namespace {

using hds::common::add_config_options;

CLI::App* add_fit(CLI::App& app, std::string& config_path, std::vector<std::string>& overrides,
                  hds::trainer::FitCommand& fit) {
  CLI::App* command = app.add_subcommand("fit", "train");
  add_config_options(*command, config_path, overrides);
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

CLI::App* add_export(CLI::App& app, hds::trainer::ExportCommand& export_command) {
  CLI::App* command = app.add_subcommand("export", "write the weights for Python's torch.load");
  CLI::Option* checkpoint =
      command->add_option("--checkpoint", export_command.checkpoint, "checkpoint directory");
  command->add_flag("--init", export_command.init, "a freshly initialised model of --config")
      ->excludes(checkpoint);
  add_config_options(*command, export_command.config_path, export_command.overrides, false);
  command->add_option("--out", export_command.out, "output file")->required();
  command->add_option("--layout", export_command.layout, "native or reference")
      ->check(CLI::IsMember({"native", "reference"}));
  command->add_flag("--probe", export_command.probe,
                    "add a probe input and the heads' logits for it");
  return command;
}

CLI::App* add_eval(CLI::App& app, hds::trainer::EvalCommand& eval) {
  CLI::App* command =
      app.add_subcommand("eval", "score a checkpoint on a split, as the paper does");
  command->add_option("--checkpoint", eval.checkpoint, "checkpoint directory")->required();
  add_config_options(*command, eval.config_path, eval.overrides, false);
  command->add_option("--split", eval.split, "val, test or all")
      ->check(CLI::IsMember({"val", "test", "all"}));
  command->add_option("--heads", eval.heads, "last or all")->check(CLI::IsMember({"last", "all"}));
  command->add_option("--out", eval.out, "output folder")->required();
  command->add_option("--bootstrap", eval.bootstrap_rounds, "bootstrap resamples")
      ->check(CLI::Range(1, 100000));
  return command;
}

CLI::App* add_infer(CLI::App& app, hds::trainer::InferCommand& infer) {
  CLI::App* command = app.add_subcommand(
      "infer", "run a checkpoint on mammograms (PNG, PGM, DICOM); exit code: how many failed");
  command->add_option("--checkpoint", infer.checkpoint, "checkpoint directory")->required();
  command->add_option("--out", infer.out, "output folder")->required();
  command->add_option("inputs", infer.inputs, "film files")->required();
  return command;
}

CLI::App* add_bench(CLI::App& app, std::string& config_path, std::vector<std::string>& overrides,
                    hds::trainer::BenchOptions& bench) {
  CLI::App* command = app.add_subcommand("bench", "time a full training step");
  add_config_options(*command, config_path, overrides, false);
  command->add_option("--batch", bench.batch, "patches per step");
  command->add_option("--height", bench.height, "patch rows (multiple of 128)");
  command->add_option("--width", bench.width, "patch cols (multiple of 128)");
  command->add_option("--steps", bench.steps, "timed steps");
  command->add_option("--warmup", bench.warmup, "untimed steps first");
  command->add_option("--threads", bench.threads, "intra-op threads (0: LibTorch's choice)");
  command->add_flag("--sync", bench.sync,
                    "also time the gradient sync over the MPI ranks (run under mpirun)");
  command->add_option("--device", bench.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hds-trainer: train, evaluate and export the HDS U-ResNet"};
  std::string config_path;
  std::vector<std::string> overrides;
  CLI::App* describe = app.add_subcommand("describe", "print the model summary and its counts");
  add_config_options(*describe, config_path, overrides, false);
  hds::trainer::FitCommand fit;
  CLI::App* fit_command = add_fit(app, config_path, overrides, fit);
  hds::trainer::ExportCommand export_options;
  CLI::App* export_command = add_export(app, export_options);
  hds::trainer::EvalCommand eval;
  CLI::App* eval_command = add_eval(app, eval);
  hds::trainer::InferCommand infer;
  CLI::App* infer_command = add_infer(app, infer);
  hds::trainer::BenchOptions bench;
  CLI::App* bench_command = add_bench(app, config_path, overrides, bench);

  // Before any tensor exists: every step reuses its activations' memory instead of faulting it in.
  hds::trainer::install_caching_cpu_allocator();
  std::unique_ptr<hds::trainer::World> world;  // once fit or bench start the ranks
  const auto options = hds::trainer::trainer_main_options(world);
  return hds::common::run_main(app, argc, argv, options, [&] {
    const auto config = [&] { return hds::config::load_config_or_paper(config_path, overrides); };
    if (*describe) hds::trainer::run_describe_command(config(), std::cout);
    if (*export_command) hds::trainer::run_export_command(export_options, std::cout);
    if (*eval_command) hds::trainer::run_eval_command(eval, std::cout);
    if (*infer_command) return hds::trainer::run_infer_command(infer, std::cout, std::cerr);
    if (!*fit_command && !*bench_command) return hds::common::kExitFinished;
    world = hds::trainer::World::from_environment();
    if (*bench_command) hds::trainer::run_bench_command(config(), bench, *world, std::cout);
    return *fit_command ? hds::trainer::run_fit_command(config(), fit, *world, std::cout)
                        : hds::common::kExitFinished;
  });
}

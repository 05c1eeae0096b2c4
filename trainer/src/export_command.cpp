// `hds-trainer export` (commands.h).
#include <memory>
#include <ostream>

#include "commands.h"
#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/trainer/bundle.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/export.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

void run_export_command(const ExportCommand& command, std::ostream& out) {
  if (command.checkpoint.empty() == !command.init) {
    throw hds::config::ConfigError("export: give --checkpoint DIR or --init [--config FILE]");
  }
  if (command.out.empty() == command.bundle.empty()) {
    throw hds::config::ConfigError("export: give --out FILE (weights) or --bundle DIR");
  }
  if (!command.bundle.empty()) {
    if (command.init) {
      throw hds::config::ConfigError(
          "export: a bundle is of a trained checkpoint (--checkpoint DIR), not --init");
    }
    export_bundle(command.checkpoint, command.bundle,
                  {command.bundle_version, command.changelog, command.evaluation});
    out << "wrote the model bundle " << command.bundle << " (version " << command.bundle_version
        << ")\n";
    return;
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

namespace {

CLI::App* add_export_options(CLI::App& app, ExportCommand& export_command) {
  CLI::App* command = app.add_subcommand(
      "export", "write the weights for Python's torch.load, or a model bundle (--bundle)");
  CLI::Option* checkpoint =
      command->add_option("--checkpoint", export_command.checkpoint, "checkpoint directory");
  command->add_flag("--init", export_command.init, "a freshly initialised model of --config")
      ->excludes(checkpoint);
  hds::common::add_config_options(*command, export_command.config_path, export_command.overrides,
                                  false);
  CLI::Option* out = command->add_option("--out", export_command.out, "output weights file");
  command->add_option("--bundle", export_command.bundle, "write a model bundle folder instead")
      ->excludes(out);
  command->add_option("--bundle-version", export_command.bundle_version,
                      "the bundle's version (default 0.1.0; new to its changelog)");
  command->add_option("--changelog", export_command.changelog, "the bundle version's entry");
  command->add_option("--evaluation", export_command.evaluation,
                      "an `hds-trainer eval --out` folder of this checkpoint to include");
  command->add_option("--layout", export_command.layout, "native or reference")
      ->check(CLI::IsMember({"native", "reference"}));
  command->add_flag("--probe", export_command.probe,
                    "add a probe input and the heads' logits for it");
  return command;
}

}  // namespace

hds::common::Subcommand add_export_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<ExportCommand>();
  return {add_export_options(app, *command), [command, &out] {
            run_export_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

}  // namespace hds::trainer

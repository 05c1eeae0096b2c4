// `hds-trainer export` (commands.h).
#include <ostream>

#include "commands.h"
#include "hds/config/config.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/export.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

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

}  // namespace hds::trainer

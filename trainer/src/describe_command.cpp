// `hds-trainer describe` (commands.h).
#include <memory>
#include <ostream>

#include "commands.h"
#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

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

hds::common::Subcommand add_describe_command(CLI::App& app, std::ostream& out) {
  struct State {
    std::string config_path;
    std::vector<std::string> overrides;
  };
  auto state = std::make_shared<State>();
  CLI::App* node = app.add_subcommand("describe", "print the model summary and its counts");
  hds::common::add_config_options(*node, state->config_path, state->overrides, false);
  return {node, [state, &out] {
            run_describe_command(
                hds::config::load_config_or_paper(state->config_path, state->overrides), out);
            return hds::common::kExitFinished;
          }};
}

}  // namespace hds::trainer

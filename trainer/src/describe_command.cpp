// `hds-trainer describe` (commands.h).
#include <ostream>

#include "commands.h"
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

}  // namespace hds::trainer

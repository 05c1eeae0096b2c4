// `hds-trainer export`: the weights as a pickled dict that Python's torch.load reads, optionally
// with a probe (a fixed input and the six heads' logits for it) so anyone can check that another
// implementation of the network computes the same function.
#pragma once

#include <torch/torch.h>

#include <string>

#include "config.pb.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

enum class ExportLayout {
  kNative,     // LibTorch's order: every parameter, then every buffer
  kReference,  // PyTorch's state_dict order of the authors' model (module by module)
};

// Shape of the probe input: 2 x 1 x 256 x 128, drawn from a fixed seed.
torch::Tensor probe_input();

// Writes {"state_dict": {name: tensor}, "config": text} (+ "probe_input", "probe_seg"
// [heads,2,2,256,128], "probe_cls" [heads,2,2,2,1] in eval mode when `with_probe`) to `path`.
// Throws std::runtime_error naming the file when it cannot be written.
void export_model(HdsNet& model, const hds::config::Config& config, const std::string& path,
                  ExportLayout layout, bool with_probe);

// Reads the weights of an export_model file of the reference layout into `model`, every tensor
// by name and strictly (a missing, extra or misshapen tensor is refused). Throws CheckpointError
// naming the file.
void import_weights(const std::string& path, HdsNet& model);

}  // namespace hds::trainer

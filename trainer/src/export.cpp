#include "hds/trainer/export.h"

#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/trainer/checkpoint.h"

namespace hds::trainer {

torch::Tensor probe_input() {
  constexpr uint64_t kProbeSeed = 20180423;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(kProbeSeed);
  return at::randn({2, 1, 256, 128}, generator, torch::kFloat);
}

namespace {

c10::Dict<std::string, torch::Tensor> state_dict(HdsNet& model, ExportLayout layout) {
  c10::Dict<std::string, torch::Tensor> dict;  // keeps insertion order
  auto add = [&dict](const std::string& name, const torch::Tensor& t) {
    dict.insert(name, t.detach().to(torch::kCPU).clone());
  };
  if (layout == ExportLayout::kReference) {
    for (const auto& [name, tensor] : ordered_state_dict(*model)) add(name, tensor);
  } else {
    for (const auto& p : model->named_parameters()) add(p.key(), p.value());
    for (const auto& b : model->named_buffers()) add(b.key(), b.value());
  }
  return dict;
}

}  // namespace

void export_model(HdsNet& model, const hds::config::Config& config, const std::string& path,
                  ExportLayout layout, bool with_probe) {
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("state_dict", state_dict(model, layout));
  out.insert("config", hds::config::to_text(config));
  if (with_probe) {
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto device = model->parameters().front().device();
    const auto input = probe_input();
    const auto output = model->forward(input.to(device));
    model->train(was_training);
    out.insert("probe_input", input);
    out.insert("probe_seg", torch::stack(output.seg).to(torch::kCPU));
    out.insert("probe_cls", torch::stack(output.cls).to(torch::kCPU));
  }
  const std::vector<char> bytes = torch::pickle_save(out);
  hds::common::replace_file(path, std::string(bytes.begin(), bytes.end()));
}

void import_weights(const std::string& path, HdsNet& model) {
  const std::string bytes = hds::common::read_whole_file(path);
  c10::IValue file;
  try {
    file = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& error) {
    throw CheckpointError(path + ": not a weights file torch can read (" +
                          error.what_without_backtrace() + ")");
  }
  if (!file.isGenericDict() || !file.toGenericDict().contains("state_dict") ||
      !file.toGenericDict().at("state_dict").isGenericDict())
    throw CheckpointError(path + ": holds no \"state_dict\" dictionary");
  const c10::impl::GenericDict weights = file.toGenericDict().at("state_dict").toGenericDict();
  auto expected = ordered_state_dict(*model);
  if (weights.size() != expected.size())
    throw CheckpointError(path + ": holds " + std::to_string(weights.size()) +
                          " tensors; the model of its configuration has " +
                          std::to_string(expected.size()));
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : expected) {
    if (!weights.contains(name) || !weights.at(name).isTensor())
      throw CheckpointError(path + ": lacks the tensor " + name);
    const torch::Tensor stored = weights.at(name).toTensor();
    if (stored.sizes() != tensor.sizes())
      throw CheckpointError(path + ": " + name + " has shape " + c10::str(stored.sizes()) +
                            "; the model's is " + c10::str(tensor.sizes()));
    tensor.copy_(stored);
  }
}

}  // namespace hds::trainer

// The export file read back: layouts, config text and the probe, recomputed from the weights.
#include "hds/trainer/export.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "hds/test/configs.h"
#include "hds/test/files.h"
#include "hds/trainer/checkpoint.h"

namespace hds::trainer {
namespace {
namespace fs = std::filesystem;

c10::impl::GenericDict read_export(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toGenericDict();
}

std::vector<std::string> keys_of(const c10::impl::GenericDict& dict) {
  std::vector<std::string> keys;
  for (const auto& entry : dict) keys.push_back(entry.key().toStringRef());
  return keys;
}

TEST(Export, reference_layout_is_pytorchs_state_dict_order_and_native_is_params_then_buffers) {
  const auto dir = hds::test::scratch_dir("export-layouts");
  const auto config = hds::test::tiny_config(dir);
  HdsNet model(config.model());
  export_model(model, config, dir + "/reference.pt", ExportLayout::kReference, false);
  export_model(model, config, dir + "/native.pt", ExportLayout::kNative, false);

  std::vector<std::string> pytorch_order;
  for (const auto& [name, tensor] : ordered_state_dict(*model)) pytorch_order.push_back(name);
  const auto reference = read_export(dir + "/reference.pt");
  EXPECT_EQ(keys_of(reference.at("state_dict").toGenericDict()), pytorch_order);
  EXPECT_EQ(reference.at("config").toStringRef(), hds::config::to_text(config));

  std::vector<std::string> native_order;
  for (const auto& p : model->named_parameters()) native_order.push_back(p.key());
  for (const auto& b : model->named_buffers()) native_order.push_back(b.key());
  EXPECT_EQ(keys_of(read_export(dir + "/native.pt").at("state_dict").toGenericDict()),
            native_order);
  EXPECT_NE(native_order, pytorch_order);
}

TEST(Export, probe_logits_are_reproduced_by_a_model_loaded_from_the_exported_weights) {
  const auto dir = hds::test::scratch_dir("export-probe");
  const auto config = hds::test::tiny_config(dir);
  torch::manual_seed(5);
  HdsNet model(config.model());
  // Non-trivial BN statistics, so that eval mode matters.
  model->forward(torch::randn({2, 1, 128, 128}) * 3 + 1);
  export_model(model, config, dir + "/probe.pt", ExportLayout::kReference, true);

  const auto file = read_export(dir + "/probe.pt");
  const auto input = file.at("probe_input").toTensor();
  const auto seg = file.at("probe_seg").toTensor();
  const auto cls = file.at("probe_cls").toTensor();
  EXPECT_EQ(input.sizes(), torch::IntArrayRef({2, 1, 256, 128}));
  EXPECT_EQ(seg.sizes(), torch::IntArrayRef({6, 2, 2, 256, 128}));
  EXPECT_EQ(cls.sizes(), torch::IntArrayRef({6, 2, 2, 2, 1}));

  // A differently initialised model takes the exported tensors by name (import_weights).
  torch::manual_seed(99);
  HdsNet loaded(config.model());
  import_weights(dir + "/probe.pt", loaded);
  loaded->eval();
  torch::NoGradGuard no_grad;
  const auto out = loaded->forward(input);
  EXPECT_TRUE(torch::allclose(torch::stack(out.seg), seg, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(torch::stack(out.cls), cls, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(input, probe_input()));
}

TEST(Export, import_weights_refuses_a_file_of_another_model_or_no_weights_naming_it) {
  const auto dir = hds::test::scratch_dir("export-import-refused");
  const auto config = hds::test::tiny_config(dir);
  HdsNet model(config.model());
  export_model(model, config, dir + "/tiny.pt", ExportLayout::kReference, false);
  const auto wider = hds::test::tiny_config(dir, {"model.widths=[4,8,8,8,8,8,8,8,8,8,4]"});
  HdsNet other(wider.model());
  try {
    import_weights(dir + "/tiny.pt", other);
    ADD_FAILURE() << "a model of other widths took the weights";
  } catch (const CheckpointError& error) {
    EXPECT_NE(std::string(error.what()).find(dir + "/tiny.pt: "), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("has shape"), std::string::npos) << error.what();
  }
  hds::test::write_text(dir + "/junk.pt", "not a pickle");
  try {
    import_weights(dir + "/junk.pt", model);
    ADD_FAILURE() << "junk read as weights";
  } catch (const CheckpointError& error) {
    EXPECT_NE(std::string(error.what()).find(dir + "/junk.pt: not a weights file"),
              std::string::npos)
        << error.what();
  }
}

TEST(Export, python_torch_load_reads_it_and_an_independent_pytorch_model_reproduces_the_probe) {
  // tests/bench/hds_reference.py builds the network from docs/design.md §3 in Python PyTorch, loads
  // the export with load_state_dict(strict=True) and compares the probe logits.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Python PyTorch (python3-torch) not installed";
  }
  const auto dir = hds::test::scratch_dir("export-python");
  const std::string model_path = dir + "/paper.pt";
  const std::string command = std::string(HDS_TRAINER_BINARY) +
                              " export --init --layout reference --probe --out " + model_path +
                              " > " + dir + "/export.log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::string check = std::string("/usr/bin/python3 ") + HDS_SOURCE_DIR +
                      "/tests/bench/hds_reference.py check-export " + model_path;
  const std::string reference = hds::test::shared_data("reference-state-dict.txt");
  if (!reference.empty()) check += " --reference-names " + reference;
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
}

}  // namespace
}  // namespace hds::trainer

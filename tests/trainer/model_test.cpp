// The network against the facts of docs/design.md §3 and the authors' published state dict.
#include "hds/trainer/model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "hds/test/configs.h"
#include "hds/test/files.h"

namespace hds::trainer {
namespace {

TEST(HdsNet, paper_model_has_the_reference_parameter_and_conv_counts) {
  HdsNet model(hds::config::paper_config().model());
  EXPECT_EQ(count_parameters(*model), 7278248);
  EXPECT_EQ(count_convs(*model->named_children()["trunk"], 3), 45);
  EXPECT_EQ(count_convs(*model, 3), 81);
}

TEST(HdsNet, state_dict_matches_the_reference_names_shapes_and_order) {
  const std::string reference = hds::test::shared_data("reference-state-dict.txt");
  if (reference.empty()) GTEST_SKIP() << "../shared/data/reference-state-dict.txt not present";
  HdsNet model(hds::config::paper_config().model());
  const auto entries = ordered_state_dict(*model);
  std::ifstream in(reference);
  std::string line;
  size_t index = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, shape, dtype;
    fields >> name >> shape >> dtype;
    ASSERT_LT(index, entries.size()) << "reference has more entries than ours, next: " << name;
    const auto& [our_name, tensor] = entries[index];
    EXPECT_EQ(our_name, name) << "entry " << index;
    std::string our_shape;
    for (auto size : tensor.sizes())
      our_shape += (our_shape.empty() ? "" : "x") + std::to_string(size);
    EXPECT_EQ(our_shape.empty() ? "scalar" : our_shape, shape) << name;
    EXPECT_EQ(tensor.dtype() == torch::kLong ? "int64" : "float32", dtype) << name;
    ++index;
  }
  EXPECT_EQ(index, entries.size());
}

TEST(HdsNet, paper_model_gives_head_shapes_for_a_training_patch_and_a_whole_image) {
  torch::NoGradGuard no_grad;
  HdsNet model(hds::config::paper_config().model());
  model->eval();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{512, 384}, {1024, 512}}) {
    const auto out = model->forward(torch::randn({1, 1, rows, cols}));
    ASSERT_EQ(out.seg.size(), 6u);
    ASSERT_EQ(out.cls.size(), 6u);
    const auto [map_rows, map_cols] = HdsNetImpl::cls_map_size(rows, cols);
    for (int head = 0; head < 6; ++head) {
      EXPECT_EQ(out.seg[head].sizes(), torch::IntArrayRef({1, 2, rows, cols})) << "head " << head;
      EXPECT_EQ(out.cls[head].sizes(), torch::IntArrayRef({1, 2, map_rows, map_cols}))
          << "head " << head;
    }
  }
  EXPECT_EQ(HdsNetImpl::cls_map_size(512, 384), std::make_pair(int64_t{4}, int64_t{3}));
  EXPECT_EQ(HdsNetImpl::cls_map_size(1024, 512), std::make_pair(int64_t{8}, int64_t{4}));
}

TEST(HdsNet, input_not_a_multiple_of_128_is_refused_with_its_size) {
  HdsNet model(hds::test::tiny_config("unused").model());
  try {
    model->forward(torch::zeros({1, 1, 500, 384}));
    FAIL() << "500x384 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("500"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("128"), std::string::npos) << e.what();
  }
}

TEST(HdsNet, initialisation_is_kaiming_normal_with_zero_biases_and_unit_batchnorm) {
  torch::manual_seed(3);
  HdsNet model(hds::config::paper_config().model());
  for (const auto& item : model->named_modules()) {
    if (auto* conv = item.value()->as<torch::nn::Conv2d>()) {
      const auto& w = conv->weight;
      const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
      if (w.numel() >= 4096) {  // enough draws for a tight estimate of the spread
        EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / fan_in), 0.05 * std::sqrt(2.0 / fan_in))
            << item.key();
      }
      if (conv->bias.defined()) {
        EXPECT_EQ(conv->bias.abs().sum().item<double>(), 0) << item.key();
      }
    } else if (auto* bn = item.value()->as<torch::nn::BatchNorm2d>()) {
      EXPECT_TRUE(bn->weight.eq(1).all().item<bool>()) << item.key();
      EXPECT_TRUE(bn->bias.eq(0).all().item<bool>()) << item.key();
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-5);
      EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.1);
    }
  }
}

TEST(HdsNet, a_subset_of_heads_builds_only_those_heads) {
  auto config = hds::test::tiny_config("unused", {"model.heads=[2,5]"});
  HdsNet model(config.model());
  torch::NoGradGuard no_grad;
  const auto out = model->forward(torch::randn({2, 1, 128, 128}));
  EXPECT_EQ(model->heads(), (std::vector<int>{2, 5}));
  ASSERT_EQ(out.seg.size(), 2u);
  EXPECT_EQ(out.seg[0].sizes(), torch::IntArrayRef({2, 2, 128, 128}));
  EXPECT_EQ(out.cls[1].sizes(), torch::IntArrayRef({2, 2, 1, 1}));
}

}  // namespace
}  // namespace hds::trainer

// Behaviour of the configuration loader: the shipped files, overrides, error messages that name
// the source, line and field, and the text form stored with checkpoints.
#include "hds/config/config.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace hds::config {
namespace {

using google::protobuf::util::MessageDifferencer;

const std::string kConfigs = std::string(HDS_SOURCE_DIR) + "/deploy/configs/";

// The ConfigError message of `action`; fails the test when it does not throw.
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no ConfigError thrown";
  return "";
}

std::string error_of_text(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(text, "bad.pbtxt", overrides); });
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// True when every field of `message` is written: singular ones set, lists non-empty.
void expect_every_field_set(const google::protobuf::Message& message, const std::string& prefix) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    const std::string path = prefix + field->name();
    if (field->is_repeated()) {
      EXPECT_GT(reflection->FieldSize(message, field), 0) << path << " is not written";
    } else {
      EXPECT_TRUE(reflection->HasField(message, field)) << path << " is not written";
      if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        expect_every_field_set(reflection->GetMessage(message, field), path + ".");
      }
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// --- the paper's configuration and the shipped files -----------------------------------------

TEST(PaperConfig, has_the_design_values_and_validates) {
  const Config config = paper_config();
  EXPECT_EQ(std::vector<int>(config.model().widths().begin(), config.model().widths().end()),
            (std::vector<int>{16, 32, 64, 128, 128, 128, 128, 128, 64, 32, 16}));
  EXPECT_EQ(config.model().heads_size(), 6);
  EXPECT_FLOAT_EQ(config.model().stage_dropout(3), 0.5f);
  EXPECT_FLOAT_EQ(config.model().head_dropout(5), 0.2f);
  EXPECT_DOUBLE_EQ(config.loss().seg_head_weights(0), 3.5);
  EXPECT_DOUBLE_EQ(config.loss().cls_head_weights(5), 1.0);
  EXPECT_EQ(std::vector<int>(config.optimizer().lr_milestones().begin(),
                             config.optimizer().lr_milestones().end()),
            (std::vector<int>{1000, 1800, 2400, 2410}));
  EXPECT_EQ(config.train().epochs(), 2800);
  EXPECT_NO_THROW(validate(config));
}

TEST(PaperFile, equals_paper_config_apart_from_its_folder_data_source) {
  const Config loaded = load_config(kConfigs + "paper.pbtxt");
  Config expected = paper_config();
  expected.mutable_data()->set_source("folder");
  expected.mutable_data()->set_root("data");
  std::string difference;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(expected, loaded)) << difference;
}

TEST(PaperFile, writes_every_field_of_the_schema) {
  Config raw;  // as written, before the loader fills anything in
  ASSERT_TRUE(
      google::protobuf::TextFormat::ParseFromString(read_file(kConfigs + "paper.pbtxt"), &raw));
  expect_every_field_set(raw, "");
}

TEST(EmptyText, gives_the_paper_config) {
  EXPECT_TRUE(MessageDifferencer::Equals(parse_config("", "empty.pbtxt"), paper_config()));
}

TEST(QuickstartFile, loads_a_small_phantom_job) {
  const Config config = load_config(kConfigs + "quickstart.pbtxt");
  EXPECT_EQ(config.data().source(), "phantom");
  EXPECT_EQ(config.model().widths(0), 8);
  EXPECT_EQ(config.model().blocks_per_stage(), 1);
  EXPECT_EQ(config.data().image_rows(), 256);
  EXPECT_EQ(config.data().patch_cols(), 128);
  EXPECT_EQ(config.train().output_dir(), "runs/quickstart");
  EXPECT_LT(config.train().epochs(), 100);
  EXPECT_EQ(config.model().head_dropout_size(), 6);  // the paper's list, filled in
  EXPECT_NO_THROW(validate(config));
}

TEST(ShippedFiles, every_one_loads_and_validates) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".pbtxt") continue;
    ++files;
    EXPECT_NO_THROW(load_config(entry.path().string())) << entry.path();
  }
  EXPECT_GE(files, 5);  // paper, quickstart, mini-mias, mini-mias-cpu, mini-mias-overfit
}

TEST(LoadConfig, names_an_unreadable_file) {
  const std::string message = error_of([] { load_config("/nonexistent/x.pbtxt"); });
  EXPECT_NE(message.find("/nonexistent/x.pbtxt"), std::string::npos) << message;
  EXPECT_NE(error_of([] { load_config(kConfigs); }).find(kConfigs), std::string::npos);
}

// --- overrides ---------------------------------------------------------------------------------

TEST(Override, sets_a_scalar) {
  EXPECT_EQ(parse_config("", "x", {"train.epochs=5"}).train().epochs(), 5);
}

TEST(Override, wins_over_the_file) {
  EXPECT_EQ(parse_config("train { epochs: 7 }", "x", {"train.epochs=5"}).train().epochs(), 5);
}

TEST(Override, replaces_a_list) {
  const Config config = parse_config("model { widths: [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4] }", "x",
                                     {"model.widths=[8,8,16,16,16,16,16,16,16,8,8]"});
  EXPECT_EQ(std::vector<int>(config.model().widths().begin(), config.model().widths().end()),
            (std::vector<int>{8, 8, 16, 16, 16, 16, 16, 16, 16, 8, 8}));
}

TEST(Override, takes_strings_with_or_without_quotes) {
  EXPECT_EQ(parse_config("", "x", {"data.source=folder", "data.root=/tmp/x"}).data().root(),
            "/tmp/x");
  EXPECT_EQ(parse_config("", "x", {"train.output_dir=\"runs/a b\""}).train().output_dir(),
            "runs/a b");
}

TEST(Override, takes_enum_names) {
  EXPECT_EQ(parse_config("", "x", {"loss.variant=SEG_DEEP_SUPERVISION"}).loss().variant(),
            LossConfig::SEG_DEEP_SUPERVISION);
}

TEST(Override, of_an_unknown_field_names_the_override) {
  const std::string message = error_of_text("", {"train.epoch=5"});
  EXPECT_EQ(message.rfind("--set train.epoch=5: ", 0), 0u) << message;
  EXPECT_NE(message.find("epoch"), std::string::npos) << message;
}

TEST(Override, without_a_value_is_rejected) {
  const std::string message = error_of_text("", {"train.epochs"});
  EXPECT_EQ(message.rfind("--set train.epochs: ", 0), 0u) << message;
}

TEST(Override, of_the_wrong_type_names_the_override) {
  const std::string message = error_of_text("", {"train.epochs=abc"});
  EXPECT_EQ(message.rfind("--set train.epochs=abc: train.epochs: ", 0), 0u) << message;
}

TEST(Override, cannot_set_other_fields_through_its_value) {
  const std::string message = error_of_text("", {"train.epochs=5 } model { heads: 1"});
  EXPECT_EQ(message.rfind("--set train.epochs=5 } model { heads: 1: ", 0), 0u) << message;
}

TEST(Override, with_an_impossible_value_is_named_in_the_validation_error) {
  EXPECT_EQ(error_of_text("data { patch_rows: 256 }", {"data.patch_rows=500"}),
            "--set data.patch_rows=500: data.patch_rows = 500: must be a positive multiple of 128");
}

// --- errors in files name the file, the line and the field -------------------------------------

TEST(FileError, unknown_field_names_file_line_and_field) {
  const std::string message = error_of_text(
      "train {\n"
      "  epochs: 5\n"
      "  epoch: 5\n"
      "}\n");
  EXPECT_EQ(message.rfind("bad.pbtxt:3:", 0), 0u) << message;
  EXPECT_NE(message.find("train.epoch:"), std::string::npos) << message;
}

TEST(FileError, wrong_type_names_file_line_and_field) {
  const std::string message = error_of_text(
      "# a comment\n"
      "train {\n"
      "  epochs: \"abc\"\n"
      "}\n");
  EXPECT_EQ(message.rfind("bad.pbtxt:3:", 0), 0u) << message;
  EXPECT_NE(message.find("train.epochs"), std::string::npos) << message;
}

TEST(FileError, patch_not_a_multiple_of_128_names_file_line_and_field) {
  const std::string message = error_of_text(
      "data {\n"
      "  image_rows: 1024\n"
      "\n"
      "  patch_rows: 500\n"
      "}\n");
  EXPECT_EQ(message, "bad.pbtxt:4: data.patch_rows = 500: must be a positive multiple of 128");
}

TEST(FileError, negative_learning_rate_names_file_line_and_field) {
  const std::string message = error_of_text(
      "train { epochs: 10 }\n"
      "optimizer {\n"
      "  momentum: 0.9\n"
      "  learning_rate: -0.1\n"
      "}\n");
  EXPECT_EQ(message, "bad.pbtxt:4: optimizer.learning_rate = -0.1: must be positive");
}

TEST(FileError, list_element_is_named_with_its_index) {
  const std::string message = error_of_text(
      "model {\n"
      "  widths: [16, 32, 64, 128, 128, 128, 128, 128, 64, 32, 8]\n"
      "}\n");
  EXPECT_EQ(message.rfind("bad.pbtxt:2: model.widths[10] = 8: must equal model.widths[0]", 0), 0u)
      << message;
}

TEST(FileError, every_problem_is_listed_in_line_order) {
  const std::string message = error_of_text(
      "train {\n"
      "  epochs: 0\n"
      "}\n"
      "optimizer { learning_rate: 0 }\n");
  EXPECT_EQ(message,
            "bad.pbtxt:2: train.epochs = 0: must be at least 1\n"
            "bad.pbtxt:4: optimizer.learning_rate = 0: must be positive");
}

TEST(FileError, cross_field_problem_points_at_the_written_field) {
  // The patch keeps its default (512 rows); the image is what the user wrote.
  const std::string message = error_of_text("data {\n  image_rows: 256\n}\n");
  EXPECT_EQ(message, "bad.pbtxt:2: data.image_rows = 256: must be at least data.patch_rows (512)");
}

// --- cross-field rules -------------------------------------------------------------------------

TEST(Validate, last_head_variant_needs_head_5) {
  const std::string message =
      error_of_text("model { heads: [0, 1] }\nloss { variant: MULTITASK_LAST_HEAD }\n");
  EXPECT_EQ(first_line(message),
            "bad.pbtxt:2: loss.variant = MULTITASK_LAST_HEAD: needs head 5 in model.heads");
}

TEST(Validate, folder_source_needs_a_root) {
  const std::string message = error_of_text("data { source: \"folder\" }");
  EXPECT_NE(message.find("data.root"), std::string::npos) << message;
}

TEST(Validate, mini_mias_and_inbreast_sources_need_a_root) {
  for (const std::string source : {"mini-mias", "inbreast"}) {
    const std::string message = error_of_text("data {\n  source: \"" + source + "\"\n}\n");
    EXPECT_EQ(message, "bad.pbtxt:2: data.source = \"" + source +
                           "\": needs data.root (the dataset folder)");
  }
}

TEST(Validate, unknown_source_lists_the_known_ones) {
  const std::string message = error_of_text("data { source: \"dicom-cloud\" }");
  EXPECT_EQ(message,
            "bad.pbtxt:1: data.source = \"dicom-cloud\": must be \"phantom\", \"folder\", "
            "\"mini-mias\" or \"inbreast\"");
}

TEST(Validate, options_beyond_the_paper_default_to_the_paper) {
  const Config config = parse_config("", "x");
  EXPECT_EQ(config.loss().segmentation(), LossConfig::CROSS_ENTROPY);
  EXPECT_EQ(config.optimizer().kind(), OptimizerConfig::SGD);
  EXPECT_EQ(config.optimizer().schedule(), OptimizerConfig::STEP);
  EXPECT_EQ(config.optimizer().warmup_epochs(), 0);
  EXPECT_EQ(config.data().breast_region(), DataConfig::WHOLE_FILM);
}

TEST(Validate, options_beyond_the_paper_refuse_impossible_values_by_name) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"loss.dice_weight=0", "loss.dice_weight = 0: must be positive"},
      {"optimizer.adam_beta1=1", "optimizer.adam_beta1 = 1: must be in [0, 1)"},
      {"optimizer.adam_beta2=-0.5", "optimizer.adam_beta2 = -0.5: must be in [0, 1)"},
      {"optimizer.poly_power=0", "optimizer.poly_power = 0: must be positive"},
      {"optimizer.warmup_epochs=-1", "optimizer.warmup_epochs = -1: must be at least 0"},
      {"optimizer.warmup_epochs=2800",
       "optimizer.warmup_epochs = 2800: must be fewer than train.epochs (2800)"},
      {"data.breast_threshold=1", "data.breast_threshold = 1: must be in [0, 1)"},
  };
  for (const auto& [override_text, problem] : cases) {
    const std::string message = error_of_text("", {override_text});
    EXPECT_EQ(message, "--set " + override_text + ": " + problem) << override_text;
  }
  EXPECT_EQ(
      error_of_text("", {"loss.segmentation=FOCAL"}).rfind("--set loss.segmentation=FOCAL", 0), 0u);
  const Config chosen = parse_config(
      "", "x",
      {"loss.segmentation=CROSS_ENTROPY_DICE", "optimizer.kind=ADAMW", "optimizer.schedule=POLY",
       "optimizer.warmup_epochs=5", "data.breast_region=LARGEST_COMPONENT"});
  EXPECT_EQ(chosen.optimizer().kind(), OptimizerConfig::ADAMW);
  EXPECT_EQ(chosen.data().breast_region(), DataConfig::LARGEST_COMPONENT);
}

TEST(DataSwitches, default_to_stop_and_no_mass) {
  const Config config = parse_config("", "x");
  EXPECT_EQ(config.data().on_bad_sample(), DataConfig::STOP);
  EXPECT_EQ(config.data().mias_other_abnormalities(), DataConfig::NO_MASS);
}

TEST(DataSwitches, are_read_from_text_and_overrides) {
  const Config config =
      parse_config("data { source: \"mini-mias\" root: \"/data/mias\" on_bad_sample: SKIP }", "x",
                   {"data.mias_other_abnormalities=EXCLUDE"});
  EXPECT_EQ(config.data().on_bad_sample(), DataConfig::SKIP);
  EXPECT_EQ(config.data().mias_other_abnormalities(), DataConfig::EXCLUDE);
}

TEST(DataSwitches, unknown_values_name_file_line_and_field) {
  // protobuf places an unknown enum name at the token after it, so keep that on the same line.
  const std::string message = error_of_text("\ndata { on_bad_sample: MAYBE }\n");
  EXPECT_EQ(message.rfind("bad.pbtxt:2:", 0), 0u) << message;
  EXPECT_NE(message.find("data.on_bad_sample"), std::string::npos) << message;
  const std::string override_message = error_of_text("", {"data.mias_other_abnormalities=IGNORE"});
  EXPECT_NE(override_message.find("--set data.mias_other_abnormalities=IGNORE"), std::string::npos)
      << override_message;
}

TEST(DataSwitches, out_of_range_values_set_in_code_are_rejected) {
#ifndef NDEBUG
  GTEST_SKIP() << "protobuf's setters assert on unknown enum values in debug builds";
#endif
  Config config = paper_config();
  config.mutable_data()->set_on_bad_sample(static_cast<DataConfig::BadSamplePolicy>(7));
  config.mutable_data()->set_mias_other_abnormalities(
      static_cast<DataConfig::MiasOtherAbnormalities>(9));
  const std::string message = error_of([&] { validate(config); });
  EXPECT_NE(message.find("data.on_bad_sample = 7: must be STOP or SKIP"), std::string::npos)
      << message;
  EXPECT_NE(message.find("data.mias_other_abnormalities = 9: must be NO_MASS or EXCLUDE"),
            std::string::npos)
      << message;
}

TEST(Validate, rejects_a_config_built_in_code) {
  Config config = paper_config();
  config.mutable_train()->set_batch_size(0);
  const std::string message = error_of([&] { validate(config); });
  EXPECT_NE(message.find("train.batch_size = 0"), std::string::npos) << message;
}

// --- the data service fields -------------------------------------------------------------------

TEST(DataService, is_off_by_default_with_a_ten_second_timeout) {
  const Config config = paper_config();
  EXPECT_EQ(config.data().service_socket(), "");
  EXPECT_EQ(config.data().service_job_id(), "");
  EXPECT_DOUBLE_EQ(config.data().service_timeout_seconds(), 10);
}

TEST(DataService, a_socket_and_job_id_are_accepted) {
  const Config config =
      parse_config("", "x",
                   {"data.service_socket=/run/hds/job-7/data.sock", "data.service_job_id=job-7",
                    "data.service_timeout_seconds=2.5"});
  EXPECT_EQ(config.data().service_socket(), "/run/hds/job-7/data.sock");
  EXPECT_DOUBLE_EQ(config.data().service_timeout_seconds(), 2.5);
}

TEST(DataService, a_socket_needs_a_job_id) {
  const std::string message = error_of_text("data { service_socket: \"/tmp/s\" }");
  EXPECT_EQ(first_line(message),
            "bad.pbtxt:1: data.service_socket = \"/tmp/s\": needs data.service_job_id (the "
            "service's --job-id)")
      << message;
}

TEST(DataService, job_ids_that_cannot_name_a_ring_are_refused) {
  const std::string message =
      error_of_text("", {"data.service_socket=/tmp/s", "data.service_job_id=a/b"});
  EXPECT_NE(message.find("data.service_job_id = \"a/b\": must be 1 to 64 characters"),
            std::string::npos)
      << message;
}

TEST(DataService, timeout_must_be_positive_and_bounded) {
  for (const std::string value : {"0", "-1", "nan", "7200"}) {
    const std::string message = error_of_text("", {"data.service_timeout_seconds=" + value});
    EXPECT_NE(message.find("data.service_timeout_seconds"), std::string::npos) << message;
    EXPECT_NE(message.find("must be in (0, 3600] seconds"), std::string::npos) << message;
  }
}

TEST(DataService, socket_paths_longer_than_a_socket_address_are_refused) {
  const std::string message = error_of_text(
      "", {"data.service_socket=/tmp/" + std::string(120, 'x'), "data.service_job_id=j"});
  EXPECT_NE(message.find("at most 107 bytes"), std::string::npos) << message;
}

// --- the stored text form ----------------------------------------------------------------------

TEST(ToText, writes_every_field_even_for_an_empty_input) {
  const std::string text = to_text(parse_config("", "x"));
  EXPECT_NE(text.find("epochs: 2800"), std::string::npos) << text;
  EXPECT_NE(text.find("seed: 20180101"), std::string::npos) << text;
  EXPECT_NE(text.find("device: \"cpu\""), std::string::npos) << text;
}

TEST(ToText, round_trips) {
  for (const Config& config :
       {paper_config(), load_config(kConfigs + "quickstart.pbtxt"),
        parse_config("", "x", {"data.mean=0.1", "data.std=0.25", "loss.alpha=0.07"})}) {
    EXPECT_TRUE(MessageDifferencer::Equals(parse_config(to_text(config), "stored"), config))
        << to_text(config);
  }
}

}  // namespace
}  // namespace hds::config

namespace hds::config {
namespace {

TEST(DataFolds, a_rotation_outside_the_folds_names_data_fold) {
  const std::string error = error_of_text("data {\n  folds: 5\n  fold: 5\n}\n");
  EXPECT_NE(error.find(":3: data.fold = 5"), std::string::npos) << error;
  EXPECT_NE(error_of_text("", {"data.folds=2"}).find("data.folds"), std::string::npos);
}

TEST(Monitoring, defaults_to_port_9400_on_loopback) {
  const Config config = paper_config();
  EXPECT_EQ(config.monitoring().metrics_port(), 9400);
  EXPECT_EQ(config.monitoring().metrics_address(), "127.0.0.1");
}

TEST(Monitoring, port_must_be_0_or_unprivileged) {
  for (const std::string value : {"-1", "80", "1023", "65536"}) {
    const std::string message = error_of_text("", {"monitoring.metrics_port=" + value});
    EXPECT_NE(message.find("monitoring.metrics_port = " + value +
                           ": must be 0 (no metrics) or a port in 1024..65535"),
              std::string::npos)
        << message;
  }
  // The highest port leaves room for the data service's (metrics_port + its offset).
  for (const std::string value : {"0", "1024", "65435"}) {
    EXPECT_NO_THROW(parse_config("", "x", {"monitoring.metrics_port=" + value})) << value;
  }
  EXPECT_NO_THROW(parse_config(
      "", "x", {"monitoring.metrics_port=65534", "monitoring.data_service_port_offset=1"}))
      << "65534 + 1";
}

TEST(Monitoring, address_must_not_be_empty) {
  const std::string message = error_of_text("monitoring { metrics_address: \"\" }");
  EXPECT_NE(message.find("bad.pbtxt:1: monitoring.metrics_address"), std::string::npos) << message;
}

TEST(Monitoring, data_service_port_offset_and_linger_are_checked) {
  std::string message = error_of_text("monitoring { data_service_port_offset: 0 }");
  EXPECT_NE(message.find("monitoring.data_service_port_offset"), std::string::npos) << message;
  message = error_of_text("monitoring { metrics_port: 65500 data_service_port_offset: 100 }");
  EXPECT_NE(message.find("monitoring.data_service_port_offset"), std::string::npos) << message;
  message = error_of_text("monitoring { linger_seconds: -1 }");
  EXPECT_NE(message.find("monitoring.linger_seconds"), std::string::npos) << message;
}

TEST(Monitoring, endpoints_are_described_per_local_rank) {
  MonitoringConfig monitoring;
  EXPECT_EQ(describe_metrics_endpoints(monitoring, 1),
            "http://127.0.0.1:9400/metrics, data service port 9500");
  monitoring.set_metrics_address("0.0.0.0");
  monitoring.set_metrics_port(9500);
  monitoring.set_data_service_port_offset(10);
  EXPECT_EQ(metrics_port(monitoring, 3), 9503);
  EXPECT_EQ(data_service_metrics_port(monitoring), 9510);
  EXPECT_EQ(describe_metrics_endpoints(monitoring, 4),
            "http://<host>:9500/metrics (local ranks 0-3: ports 9500-9503), data service port "
            "9510");
  EXPECT_EQ(metrics_host(monitoring, "node2"), "node2");
  EXPECT_FALSE(metrics_on_loopback(monitoring));
  for (const std::string loopback : {"127.0.0.1", "127.0.1.1", "::1", "localhost"}) {
    monitoring.set_metrics_address(loopback);
    EXPECT_TRUE(metrics_on_loopback(monitoring)) << loopback;
    EXPECT_EQ(metrics_host(monitoring, "node2"), loopback);
  }
  monitoring.set_metrics_address("10.0.0.5");
  EXPECT_FALSE(metrics_on_loopback(monitoring));
  EXPECT_EQ(metrics_host(monitoring, "node2"), "10.0.0.5");
  monitoring.set_metrics_port(0);
  EXPECT_EQ(metrics_port(monitoring, 3), 0);
  EXPECT_EQ(data_service_metrics_port(monitoring), 0);
  EXPECT_EQ(describe_metrics_endpoints(monitoring, 4), "off (monitoring.metrics_port = 0)");
}

}  // namespace
TEST(Limits, absurd_widths_and_blocks_are_refused_by_name) {
  EXPECT_NE(error_of_text("model { widths: [100000, 8, 8, 8, 8, 8, 8, 8, 8, 8, 100000] }")
                .find("model.widths[0] = 100000: must be in 1..4096"),
            std::string::npos);
  EXPECT_NE(error_of_text("model { blocks_per_stage: 1000 }")
                .find("model.blocks_per_stage = 1000: must be in 1..64"),
            std::string::npos);
}

TEST(Limits, the_image_size_must_fit_the_film_pixel_budget) {
  const std::string message = error_of_text("data { image_rows: 65536 image_cols: 65536 }");
  EXPECT_NE(message.find("data.image_rows"), std::string::npos) << message;
  EXPECT_NE(message.find("times data.image_cols is 4294967296 pixels: must be at most "
                         "data.max_film_pixels (33554432)"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of_text("data { max_film_pixels: 100000 }").find("data.max_film_pixels"),
            std::string::npos);
}

TEST(Limits, a_configuration_file_longer_than_the_limit_is_refused_unread) {
  try {
    load_config("/dev/zero");
    FAIL() << "/dev/zero loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/zero: longer than 1048576 bytes"), std::string::npos)
        << e.what();
  }
}

}  // namespace hds::config

// The paper's defaults: proto2 cannot give repeated fields defaults, so the paper's lists
// (docs/design.md §3) live here, and every loaded config has every field set.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "config_internal.h"
#include "hds/common/architecture.h"
#include "hds/config/config.h"

namespace hds::config {
namespace {

namespace pb = google::protobuf;

void fill_paper_lists(Config& config) {
  ModelConfig& model = *config.mutable_model();
  if (model.widths_size() == 0) {
    for (int w : {16, 32, 64, 128, 128, 128, 128, 128, 64, 32, 16}) model.add_widths(w);
  }
  if (model.stage_dropout_size() == 0) {
    for (float p : {.2f, .2f, .2f, .5f, .5f, .5f, .5f, .5f, .2f, .2f, .2f}) {
      model.add_stage_dropout(p);
    }
  }
  if (model.head_dropout_size() == 0) {
    for (float p : {.5f, .5f, .5f, .2f, .2f, .2f}) model.add_head_dropout(p);
  }
  if (model.heads_size() == 0) {
    for (int h = 0; h < hds::common::kHeadCount; ++h) model.add_heads(h);
  }
  LossConfig& loss = *config.mutable_loss();
  if (loss.seg_head_weights_size() == 0) {
    for (double w : {3.5, 3.0, 2.5, 2.0, 1.5, 1.0}) loss.add_seg_head_weights(w);
  }
  if (loss.cls_head_weights_size() == 0) {
    for (double w : {3.5, 3.0, 2.5, 2.0, 1.5, 1.0}) loss.add_cls_head_weights(w);
  }
  OptimizerConfig& optimizer = *config.mutable_optimizer();
  if (optimizer.lr_milestones_size() == 0) {
    for (int s : {1000, 1800, 2400, 2410}) optimizer.add_lr_milestones(s);
  }
}

// Marks every singular field as set (to its current, possibly default, value), recursively. A
// loaded config is then self-contained: it prints every field, and two configs with the same
// values compare equal whether a value came from a file or from a default.
void set_every_field(pb::Message& message) {
  const pb::Descriptor* descriptor = message.GetDescriptor();
  const pb::Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int k = 0; k < reflection->FieldSize(message, field); ++k) {
          set_every_field(*reflection->MutableRepeatedMessage(&message, field, k));
        }
      }
      continue;
    }
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        set_every_field(*reflection->MutableMessage(&message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&message, field, reflection->GetInt32(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        reflection->SetInt64(&message, field, reflection->GetInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        reflection->SetUInt32(&message, field, reflection->GetUInt32(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        reflection->SetUInt64(&message, field, reflection->GetUInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        reflection->SetFloat(&message, field, reflection->GetFloat(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(&message, field, reflection->GetDouble(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&message, field, reflection->GetBool(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        reflection->SetEnumValue(&message, field, reflection->GetEnumValue(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&message, field, reflection->GetString(message, field));
        break;
    }
  }
}

}  // namespace

namespace detail {

void complete(Config& config) {
  fill_paper_lists(config);
  set_every_field(config);
}

}  // namespace detail

Config paper_config() {
  Config config;
  detail::complete(config);
  return config;
}

int metrics_port(const MonitoringConfig& monitoring, int local_rank) {
  return monitoring.metrics_port() == 0 ? 0 : monitoring.metrics_port() + local_rank;
}

int data_service_metrics_port(const MonitoringConfig& monitoring) {
  return monitoring.metrics_port() == 0
             ? 0
             : monitoring.metrics_port() + monitoring.data_service_port_offset();
}

double collective_timeout_seconds(const Config& config) {
  const double configured = config.distributed().collective_timeout_seconds();
  if (configured > 0) return configured;
  return config.train().device() == "cuda" ? 10 : 60;
}

std::string metrics_host(const MonitoringConfig& monitoring, const std::string& node) {
  const std::string& address = monitoring.metrics_address();
  const bool wildcard = address == "0.0.0.0" || address == "::" || address == "[::]";
  return wildcard ? node : address;
}

bool metrics_on_loopback(const MonitoringConfig& monitoring) {
  const std::string& address = monitoring.metrics_address();
  return address == "localhost" || address == "::1" || address == "[::1]" ||
         address.rfind("127.", 0) == 0;
}

std::string describe_metrics_endpoints(const MonitoringConfig& monitoring, int local_ranks) {
  if (monitoring.metrics_port() == 0) return "off (monitoring.metrics_port = 0)";
  const int first = metrics_port(monitoring, 0);
  std::string text =
      "http://" + metrics_host(monitoring, "<host>") + ":" + std::to_string(first) + "/metrics";
  if (local_ranks > 1) {
    text += " (local ranks 0-" + std::to_string(local_ranks - 1) + ": ports " +
            std::to_string(first) + "-" +
            std::to_string(metrics_port(monitoring, local_ranks - 1)) + ")";
  }
  return text + ", data service port " + std::to_string(data_service_metrics_port(monitoring));
}

}  // namespace hds::config

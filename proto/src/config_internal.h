// Internals shared by the configuration loader's parts: config_defaults.cpp (the paper's lists,
// every field set), config_validation.cpp (range and cross-field rules, located on the user's
// line) and config_text.cpp (text format, --set overrides). Not part of the public interface.
#pragma once

#include <google/protobuf/text_format.h>

#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::config::detail {

// The form every loader result has: the paper's lists filled where empty, every singular field
// set (so it prints every field and compares equal to a config with the same values).
void complete(Config& config);

// Where a field's value came from, so that problems can name the line or the override.

struct AppliedOverride {
  std::string path;  // "model.widths"
  std::string text;  // the override as given: "model.widths=[8,8,...]"
};

struct Origin {
  std::string source;  // file name or other label of the text
  const google::protobuf::TextFormat::ParseInfoTree* tree =
      nullptr;                             // field locations in that text
  std::vector<AppliedOverride> overrides;  // in the order applied
};

// Validates `config`; throws one ConfigError listing every problem, one per line, those with a
// line of the text first (in line order), then overrides, then defaults. `origin` may be null
// (a config built in code).
void validate_with_origin(const Config& config, const Origin* origin);

}  // namespace hds::config::detail

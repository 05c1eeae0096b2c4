// Small text forms shared by the reports (Markdown tables, model cards, summaries).
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

namespace hds::common {

// `value` with `digits` decimals ("%.*f").
inline std::string fixed_decimals(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// `path` made lexically normal without a trailing '/', so that "run/best-dice/" and
// "run/best-dice" both name the folder best-dice.
inline std::filesystem::path without_trailing_slash(const std::string& path) {
  std::filesystem::path normal = std::filesystem::path(path).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();
  return normal;
}

}  // namespace hds::common

// What an exception means for a program's exit code (exit_codes.h) and the start of its message;
// run_main (command_line.h) applies it. Separate from command_line.h so that libraries can
// classify their own errors without CLI11.
#pragma once

#include <exception>
#include <string>

namespace hds::common {

struct Failure {
  int exit_code;
  std::string label;  // "configuration error: ", "error: "
};

// hds::config::ConfigError: kExitUsage, "configuration error: "; anything else: kExitError,
// "error: ". Programs with errors of their own try those first and fall back on this.
Failure classify_failure(const std::exception& error);

}  // namespace hds::common

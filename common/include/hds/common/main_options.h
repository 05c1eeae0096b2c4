// How a program's main turns errors into exit codes (exit_codes.h) and messages; run_main
// (command_line.h) applies it. Apart from command_line.h so that libraries can describe their
// own programs' policy without CLI11.
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace hds::common {

struct Failure {
  int exit_code;
  std::string label;  // "configuration error: ", "error: "
  // Printed in place of what() when not empty: a library's message without the backtrace its
  // what() carries (LibTorch's).
  std::string message = "";
};

// hds::config::ConfigError: kExitUsage, "configuration error: "; anything else: kExitError,
// "error: ". Programs with errors of their own try those first and fall back on this.
Failure classify_failure(const std::exception& error);

struct MainOptions {
  // Names the program at the start of each message ("hds-launch: error: ..."); "" for none.
  std::string program;
  // A bad command line exits kExitUsage, or with CLI11's own code (105 for a value that fails
  // its check, ...) where a program's users already depend on those.
  bool cli11_exit_codes = false;
  std::function<Failure(const std::exception&)> classify = classify_failure;
  // Text before each error message, asked for when the error happens ("rank 1/2: ").
  std::function<std::string()> context;
  // Called with the exit code of a failure before main returns it (e.g. to end every MPI rank).
  std::function<void(int)> on_failure;
};

}  // namespace hds::common

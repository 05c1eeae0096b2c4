// run_main, the skeleton of the three programs' mains: what a failing subcommand prints and the
// exit code it becomes.
#include "hds/common/command_line.h"

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "hds/common/exit_codes.h"
#include "hds/config/config.h"

namespace hds::common {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string stderr_text;
};

// run_main of a program with one subcommand `go`, run as `prog go`, whose run is `run`.
Outcome run_go(const MainOptions& options, const std::function<int()>& run) {
  CLI::App app{"test"};
  app.add_subcommand("go", "the one subcommand");
  const char* argv[] = {"prog", "go"};
  std::ostringstream captured;
  std::streambuf* const saved = std::cerr.rdbuf(captured.rdbuf());
  Outcome outcome;
  outcome.exit_code = run_main(app, 2, const_cast<char**>(argv), options, run);
  std::cerr.rdbuf(saved);
  outcome.stderr_text = captured.str();
  return outcome;
}

TEST(RunMain, a_configuration_error_exits_as_usage_and_others_as_errors) {
  MainOptions options;
  options.program = "prog";
  const Outcome config = run_go(options, []() -> int {
    throw hds::config::ConfigError("train.epochs = 0: must be positive");
  });
  EXPECT_EQ(config.exit_code, kExitUsage);
  EXPECT_EQ(config.stderr_text, "prog: configuration error: train.epochs = 0: must be positive\n");
  const Outcome other = run_go(options, []() -> int { throw std::runtime_error("disk full"); });
  EXPECT_EQ(other.exit_code, kExitError);
  EXPECT_EQ(other.stderr_text, "prog: error: disk full\n");
  EXPECT_EQ(run_go(options, [] { return 7; }).exit_code, 7);
}

TEST(RunMain, a_programs_own_failure_names_its_code_context_and_message) {
  MainOptions options;  // no program name
  int reported = -1;
  options.classify = [](const std::exception& error) -> Failure {
    if (std::string(error.what()).find("\nframe #0") != std::string::npos)
      return {42, "library error: ", "what it says without its backtrace"};
    return classify_failure(error);
  };
  options.context = [] { return std::string("rank 1/2: "); };
  options.on_failure = [&reported](int code) { reported = code; };
  const Outcome outcome = run_go(options, []() -> int {
    throw std::runtime_error("what it says\nframe #0: somewhere\nframe #1: elsewhere");
  });
  EXPECT_EQ(outcome.exit_code, 42);
  EXPECT_EQ(reported, 42);
  EXPECT_EQ(outcome.stderr_text, "rank 1/2: library error: what it says without its backtrace\n");
}

}  // namespace
}  // namespace hds::common

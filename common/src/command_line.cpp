#include "hds/common/command_line.h"

#include <iostream>

#include "hds/common/exit_codes.h"
#include "hds/config/config.h"

namespace hds::common {

Failure classify_failure(const std::exception& error) {
  if (dynamic_cast<const hds::config::ConfigError*>(&error) != nullptr) {
    return {kExitUsage, "configuration error: "};
  }
  return {kExitError, "error: "};
}

int run_main(CLI::App& app, int argc, char** argv, const MainOptions& options,
             const std::function<int()>& run) {
  // The subcommand check comes after parsing: with require_subcommand(), CLI11 would answer a
  // misspelt subcommand with "A subcommand is required" instead of naming the stray word.
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) {
      std::string names;
      for (const CLI::App* command : app.get_subcommands({})) {
        names += (names.empty() ? "" : ", ") + command->get_name();
      }
      throw CLI::RequiredError("a subcommand (" + names + ")");
    }
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return options.cli11_exit_codes || code == 0 ? code : kExitUsage;
  }
  try {
    return run();
  } catch (const std::exception& error) {
    const Failure failure = options.classify(error);
    std::cerr << (options.program.empty() ? "" : options.program + ": ")
              << (options.context ? options.context() : "") << failure.label
              << (failure.message.empty() ? error.what() : failure.message) << "\n";
    if (options.on_failure) options.on_failure(failure.exit_code);
    return failure.exit_code;
  }
}

int run_subcommands(CLI::App& app, int argc, char** argv, const MainOptions& options,
                    const std::vector<Subcommand>& subcommands) {
  return run_main(app, argc, argv, options, [&subcommands] {
    for (const Subcommand& subcommand : subcommands) {
      if (subcommand.command->parsed()) return subcommand.run();
    }
    return kExitFinished;
  });
}

void add_config_options(CLI::App& command, std::string& config_path,
                        std::vector<std::string>& overrides, bool required) {
  CLI::Option* config = command.add_option("--config", config_path, "Job configuration (.pbtxt)");
  if (required) config->required();
  command.add_option("--set", overrides,
                     "Override a field, repeatable: --set train.epochs=5 --set data.root=/data");
}

CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& text) {
        return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos
                   ? std::string()
                   : "must be a non-negative integer, not " + text;
      },
      "UINT");
}

}  // namespace hds::common

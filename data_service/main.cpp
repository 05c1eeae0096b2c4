// hds-data-service: the data side of training. For now one subcommand:
//   hds-data-service phantom --out DIR --count N --seed S [--rows R --cols C]
// writes synthetic mammograms in the folder layout (see hds/data/phantom.h).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>

#include "hds/data/dataset.h"
#include "hds/data/phantom.h"

namespace {

struct PhantomArguments {
  std::string out_dir;
  int count = 0;
  uint64_t seed = 0;
  int rows = 1024;
  int cols = 512;
};

// CLI11 2.1 reads "-1" into an unsigned integer as 2^64 - 1; refuse the sign instead.
CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& text) {
        return text.find_first_not_of("0123456789") == std::string::npos && !text.empty()
                   ? std::string()
                   : "must be a non-negative integer, not " + text;
      },
      "UINT");
}

void add_phantom_command(CLI::App& app, PhantomArguments& arguments) {
  CLI::App* phantom =
      app.add_subcommand("phantom", "Write synthetic mammograms as img/, label/ and split/");
  phantom->add_option("--out", arguments.out_dir, "Folder to write (created if missing)")
      ->required();
  phantom->add_option("--count", arguments.count, "Number of films")
      ->required()
      ->check(CLI::Range(1, 1000000));
  phantom->add_option("--seed", arguments.seed, "Seed of the phantom family")
      ->required()
      ->check(non_negative_integer());
  phantom->add_option("--rows", arguments.rows, "Film rows")
      ->check(CLI::Range(64, 1 << 15))
      ->capture_default_str();
  phantom->add_option("--cols", arguments.cols, "Film columns")
      ->check(CLI::Range(64, 1 << 15))
      ->capture_default_str();
}

void run_phantom(const PhantomArguments& arguments) {
  hds::data::write_phantom_folder(arguments.out_dir, arguments.count, arguments.seed,
                                  arguments.rows, arguments.cols);
  std::map<std::string, int> split_sizes;
  for (int index = 0; index < arguments.count; ++index)
    ++split_sizes[hds::data::phantom_split(index)];
  std::cout << "wrote " << arguments.count << " phantom films of " << arguments.rows << "x"
            << arguments.cols << " (seed " << arguments.seed << ") to " << arguments.out_dir
            << ": img/<id>.png, label/<id>.png, split/train.txt (" << split_sizes["train"]
            << "), split/val.txt (" << split_sizes["val"] << "), split/test.txt ("
            << split_sizes["test"] << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HDS data service: datasets, preprocessing and training patches"};
  PhantomArguments phantom;
  add_phantom_command(app, phantom);
  // The subcommand check comes after parsing: with require_subcommand(), CLI11 would answer a
  // misspelt subcommand with "A subcommand is required" instead of naming the stray word.
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) throw CLI::RequiredError("a subcommand (phantom)");
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  try {
    if (app.got_subcommand("phantom")) run_phantom(phantom);
  } catch (const std::exception& error) {
    std::cerr << "hds-data-service: error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

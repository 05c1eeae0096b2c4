// hds-data-service: the data side of training. Each subcommand registers its options beside its
// code (hds/data_server/service_commands.h); this lists them:
//   phantom --out DIR --count N --seed S [--rows R --cols C]   synthetic mammograms (phantom.h)
//   inspect --config F [--set a.b=v ...]                       the dataset of a job
//   serve --config F [--socket PATH] [--job-id ID]             batches over shared memory
//   export --config F --out DIR [--films ID,...]               a job's films as a folder dataset
//   bench ring | bench produce --config F                      one JSON line each
// Exit codes: hds/common/exit_codes.h; a bad command line exits with CLI11's code.
#include <CLI/CLI.hpp>
#include <iostream>

#include "hds/common/command_line.h"
#include "hds/data_server/service_commands.h"

int main(int argc, char** argv) {
  namespace server = hds::data_server;
  CLI::App app{"HDS data service: datasets, preprocessing and training patches"};
  std::vector<hds::common::Subcommand> subcommands = {
      server::add_phantom_command(app, std::cout), server::add_inspect_command(app, std::cout),
      server::add_serve_command(app, std::cout), server::add_export_command(app, std::cout)};
  for (hds::common::Subcommand& bench : server::add_bench_commands(app, std::cout)) {
    subcommands.push_back(std::move(bench));
  }
  hds::common::MainOptions options;
  options.program = "hds-data-service";
  options.cli11_exit_codes = true;  // the service's users and tests rely on CLI11's codes
  return hds::common::run_subcommands(app, argc, argv, options, subcommands);
}

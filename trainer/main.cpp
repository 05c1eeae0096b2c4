// hds-trainer: describe | fit | eval | infer | export | bench. Each subcommand registers its
// options beside its code (src/commands.h); this lists them. Exit codes:
// hds/common/exit_codes.h. Under mpirun or `srun --mpi=pmix`, `fit` and `bench` are one rank of a
// data-parallel job.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "commands.h"
#include "cpu_allocator.h"
#include "hds/common/command_line.h"

int main(int argc, char** argv) {
  namespace trainer = hds::trainer;
  CLI::App app{"hds-trainer: train, evaluate and export the HDS U-ResNet"};
  std::unique_ptr<trainer::World> world;  // once fit or bench start the ranks
  const std::vector<hds::common::Subcommand> subcommands = {
      trainer::add_describe_command(app, std::cout),
      trainer::add_fit_command(app, world, std::cout),
      trainer::add_export_command(app, std::cout),
      trainer::add_eval_command(app, std::cout),
      trainer::add_infer_command(app, std::cout, std::cerr),
      trainer::add_bench_command(app, world, std::cout)};
  // Before any tensor exists: every step reuses its activations' memory instead of faulting it in.
  trainer::install_caching_cpu_allocator();
  return hds::common::run_subcommands(app, argc, argv, trainer::trainer_main_options(world),
                                      subcommands);
}

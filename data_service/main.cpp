// hds-data-service: the data side of training. Parses the command line and calls one function
// of hds/data_server/service_commands.h (or the ring benchmark) per subcommand:
//   phantom --out DIR --count N --seed S [--rows R --cols C]   synthetic mammograms (phantom.h)
//   inspect --config F [--set a.b=v ...]                       the dataset of a job
//   serve --config F [--socket PATH] [--job-id ID]             batches over shared memory
//   export --config F --out DIR [--films ID,...]               a job's films as a folder dataset
//   bench ring | bench produce --config F                      one JSON line each
// Exit codes: hds/common/exit_codes.h; a bad command line exits with CLI11's code.
#include <CLI/CLI.hpp>
#include <iostream>

#include "hds/common/command_line.h"
#include "hds/data_server/ring_bench.h"
#include "hds/data_server/service_commands.h"

namespace {

using hds::common::add_config_options;

// An option with a range check that shows its default in --help.
template <class T>
void add_ranged(CLI::App& command, const std::string& name, T& value, const std::string& help,
                T low, T high) {
  command.add_option(name, value, help)->check(CLI::Range(low, high))->capture_default_str();
}

CLI::App* add_phantom(CLI::App& app, hds::data_server::PhantomCommand& phantom) {
  CLI::App* command =
      app.add_subcommand("phantom", "Write synthetic mammograms as img/, label/ and split/");
  command->add_option("--out", phantom.out_dir, "Folder to write (created if missing)")->required();
  command->add_option("--count", phantom.count, "Number of films")
      ->required()
      ->check(CLI::Range(1, 1000000));
  command->add_option("--seed", phantom.seed, "Seed of the phantom family")
      ->required()
      ->check(hds::common::non_negative_integer());
  add_ranged(*command, "--rows", phantom.rows, "Film rows", 64, 1 << 15);
  add_ranged(*command, "--cols", phantom.cols, "Film columns", 64, 1 << 15);
  command->add_option("--mass-free-share", phantom.mass_free_share, "Share of films without a mass")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  return command;
}

CLI::App* add_export(CLI::App& app, hds::data_server::ExportCommand& command_options) {
  CLI::App* command = app.add_subcommand(
      "export",
      "Write a job's films as read (before preprocessing) with their masks as img/, label/ and "
      "split/, each in its split");
  add_config_options(*command, command_options.job.config_path, command_options.job.overrides);
  command->add_option("--out", command_options.out_dir, "Folder to write (created if missing)")
      ->required();
  command
      ->add_option("--films", command_options.films,
                   "Only these film ids, all as training films (comma-separated)")
      ->delimiter(',');
  command->add_flag("--validate-on-copies", command_options.validate_on_copies,
                    "The validation split is copies of the training films (<id>-copy): an "
                    "overfit check");
  return command;
}

CLI::App* add_serve(CLI::App& app, hds::data_server::ServeCommand& serve) {
  CLI::App* command = app.add_subcommand(
      "serve", "Stream training batches to trainer ranks; prints \"ready: socket PATH\"");
  add_config_options(*command, serve.job.config_path, serve.job.overrides);
  command->add_option(
      "--socket", serve.socket_path,
      "Control socket (default: data.service_socket); its directory is created 0700");
  command->add_option("--job-id", serve.job_id,
                      "Job id naming the rings (default: data.service_job_id)");
  command->add_option("--ready-file", serve.ready_file,
                      "Written (\"socket PATH\", \"pid PID\") once listening, removed on stopping; "
                      "%h stands for the short host name");
  add_ranged<uint32_t>(*command, "--slots", serve.slots, "Ring slots per rank", 1, 1024);
  add_ranged(*command, "--workers", serve.workers, "Producer threads per rank", 1, 64);
  add_ranged<uint64_t>(*command, "--ring-memory-mb", serve.ring_memory_mb,
                       "MiB all rings together may take in /dev/shm (0: half of the smaller of "
                       "its free space and the available memory)",
                       0, uint64_t{1} << 30);
  return command;
}

CLI::App* add_ring_bench(CLI::App& bench, hds::data_server::RingBenchOptions& ring) {
  CLI::App* command = bench.add_subcommand(
      "ring", "Ring throughput between two processes, as a ratio to memcpy (target >= 0.7)");
  add_ranged(*command, "--batches", ring.batches, "Timed batches", 1, 1000000);
  add_ranged<uint32_t>(*command, "--slots", ring.slots, "Ring slots", 1, 1024);
  add_ranged(*command, "--patches", ring.patches, "Patches per batch", 1, 4096);
  add_ranged(*command, "--rows", ring.rows, "Patch rows", 1, 1 << 15);
  add_ranged(*command, "--cols", ring.cols, "Patch columns", 1, 1 << 15);
  return command;
}

CLI::App* add_produce_bench(CLI::App& bench, hds::data_server::JobConfigArguments& job,
                            hds::data_server::ProduceBenchOptions& produce) {
  CLI::App* command = bench.add_subcommand(
      "produce",
      "Augmented patches per second per worker thread from the job's preprocessed films "
      "(target >= 2000 at 512x384)");
  add_config_options(*command, job.config_path, job.overrides);
  add_ranged(*command, "--threads", produce.threads, "Producing threads", 1,
             hds::data_server::kMaxProduceBenchThreads);
  add_ranged(*command, "--batches", produce.batches, "Timed batches per thread", 1, 1000000);
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HDS data service: datasets, preprocessing and training patches"};
  hds::data_server::PhantomCommand phantom;
  CLI::App* phantom_command = add_phantom(app, phantom);
  hds::data_server::JobConfigArguments inspect;
  CLI::App* inspect_command = app.add_subcommand(
      "inspect", "Load a configuration's dataset and print films, patients, masses and folds");
  add_config_options(*inspect_command, inspect.config_path, inspect.overrides);
  hds::data_server::ServeCommand serve;
  CLI::App* serve_command = add_serve(app, serve);
  hds::data_server::ExportCommand export_films;
  CLI::App* export_command = add_export(app, export_films);
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks; one JSON line each");
  bench->require_subcommand(1);
  hds::data_server::RingBenchOptions ring;
  CLI::App* ring_command = add_ring_bench(*bench, ring);
  hds::data_server::JobConfigArguments produce_job;
  hds::data_server::ProduceBenchOptions produce;
  CLI::App* produce_command = add_produce_bench(*bench, produce_job, produce);

  hds::common::MainOptions options;
  options.program = "hds-data-service";
  options.cli11_exit_codes = true;  // the service's users and tests rely on CLI11's codes
  return hds::common::run_main(app, argc, argv, options, [&] {
    if (*phantom_command) hds::data_server::run_phantom_command(phantom, std::cout);
    if (*inspect_command) hds::data_server::run_inspect_command(inspect, std::cout);
    if (*serve_command) hds::data_server::run_serve_command(serve, std::cout);
    if (*export_command) hds::data_server::run_export_command(export_films, std::cout);
    if (*ring_command) std::cout << hds::data_server::run_ring_benchmark(ring).json() << std::endl;
    if (*produce_command)
      hds::data_server::run_produce_bench_command(produce_job, produce, std::cout);
    return 0;
  });
}

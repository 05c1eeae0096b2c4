// hds-data-service: the data side of training.
//   hds-data-service phantom --out DIR --count N --seed S [--rows R --cols C]
// writes synthetic mammograms in the folder layout (see hds/data/phantom.h).
//   hds-data-service serve --config F [--set a.b=v ...] [--socket PATH] [--job-id ID]
// streams training batches to trainer ranks over shared memory (see hds/data/data_server.h).
//   hds-data-service bench ring | bench produce --config F
// print the ring's throughput or the patches per second per worker thread as one JSON line (see
// hds/data/ring_bench.h, hds/data/produce_bench.h).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "hds/config/config.h"
#include "hds/data/data_server.h"
#include "hds/data/dataset.h"
#include "hds/data/inspect.h"
#include "hds/data/phantom.h"
#include "hds/data/produce_bench.h"
#include "hds/data/ring_bench.h"

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

struct ServeArguments {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string socket_path;  // default: data.service_socket
  std::string job_id;       // default: data.service_job_id
  uint32_t slots = 4;
  int workers = 2;
};

void add_serve_command(CLI::App& app, ServeArguments& arguments) {
  CLI::App* serve = app.add_subcommand(
      "serve", "Stream training batches to trainer ranks; prints \"ready: socket PATH\"");
  serve->add_option("--config", arguments.config_path, "Job configuration (text format)")
      ->required();
  serve->add_option("--set", arguments.overrides, "Override a field: --set train.batch_size=4");
  serve->add_option("--socket", arguments.socket_path,
                    "Control socket (default: data.service_socket); its directory is created 0700");
  serve->add_option("--job-id", arguments.job_id,
                    "Job id naming the rings (default: data.service_job_id)");
  serve->add_option("--slots", arguments.slots, "Ring slots per rank")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  serve->add_option("--workers", arguments.workers, "Producer threads per rank")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

void run_serve(const ServeArguments& arguments) {
  const hds::config::Config config =
      hds::config::load_config(arguments.config_path, arguments.overrides);
  hds::data::ServeOptions options;
  options.socket_path =
      arguments.socket_path.empty() ? config.data().service_socket() : arguments.socket_path;
  options.job_id = arguments.job_id.empty() ? config.data().service_job_id() : arguments.job_id;
  if (options.socket_path.empty() || options.job_id.empty()) {
    throw hds::config::ConfigError(
        "serve: needs --socket and --job-id (or data.service_socket and data.service_job_id)");
  }
  options.slot_count = arguments.slots;
  options.workers_per_rank = arguments.workers;
  options.peer_timeout_seconds = config.data().service_timeout_seconds();
  hds::data::serve(config, options,
                   [&] { std::cout << "ready: socket " << options.socket_path << std::endl; });
}

struct InspectArguments {
  std::string config_path;
  std::vector<std::string> overrides;
};

void add_inspect_command(CLI::App& app, InspectArguments& arguments) {
  CLI::App* inspect = app.add_subcommand(
      "inspect", "Load a configuration's dataset and print films, patients, masses and folds");
  inspect->add_option("--config", arguments.config_path, "Job configuration (text format)")
      ->required();
  inspect->add_option("--set", arguments.overrides, "Override a field: --set data.root=/data");
}

void run_inspect(const InspectArguments& arguments) {
  const hds::config::Config config =
      hds::config::load_config(arguments.config_path, arguments.overrides);
  const hds::data::Dataset dataset = hds::data::load_dataset(config.data());
  std::cout << hds::data::describe_dataset(dataset, config.data());
}

struct BenchArguments {
  hds::data::RingBenchOptions ring;
  std::string config_path;  // produce
  std::vector<std::string> overrides;
  hds::data::ProduceBenchOptions produce;
};

void add_bench_command(CLI::App& app, BenchArguments& arguments) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks; one JSON line each");
  bench->require_subcommand(1);
  hds::data::RingBenchOptions& ring = arguments.ring;
  CLI::App* ring_command = bench->add_subcommand(
      "ring", "Ring throughput between two processes, as a ratio to memcpy (target >= 0.7)");
  ring_command->add_option("--batches", ring.batches, "Timed batches")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  ring_command->add_option("--slots", ring.slots, "Ring slots")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  ring_command->add_option("--patches", ring.patches, "Patches per batch")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  ring_command->add_option("--rows", ring.rows, "Patch rows")
      ->check(CLI::Range(1, 1 << 15))
      ->capture_default_str();
  ring_command->add_option("--cols", ring.cols, "Patch columns")
      ->check(CLI::Range(1, 1 << 15))
      ->capture_default_str();

  CLI::App* produce_command = bench->add_subcommand(
      "produce",
      "Augmented patches per second per worker thread from the job's preprocessed films "
      "(target >= 2000 at 512x384)");
  produce_command->add_option("--config", arguments.config_path, "Job configuration (text format)")
      ->required();
  produce_command->add_option("--set", arguments.overrides,
                              "Override a field: --set data.root=/data");
  produce_command->add_option("--threads", arguments.produce.threads, "Producing threads")
      ->check(CLI::Range(1, hds::data::kMaxProduceBenchThreads))
      ->capture_default_str();
  produce_command->add_option("--batches", arguments.produce.batches, "Timed batches per thread")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
}

void run_bench(CLI::App& bench, const BenchArguments& arguments) {
  if (bench.got_subcommand("ring")) {
    std::cout << hds::data::run_ring_benchmark(arguments.ring).json() << std::endl;
  }
  if (bench.got_subcommand("produce")) {
    const hds::config::Config config =
        hds::config::load_config(arguments.config_path, arguments.overrides);
    std::cout << hds::data::run_produce_benchmark(config, arguments.produce).json() << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HDS data service: datasets, preprocessing and training patches"};
  PhantomArguments phantom;
  add_phantom_command(app, phantom);
  ServeArguments serve;
  add_serve_command(app, serve);
  InspectArguments inspect;
  add_inspect_command(app, inspect);
  BenchArguments bench;
  add_bench_command(app, bench);
  // The subcommand check comes after parsing: with require_subcommand(), CLI11 would answer a
  // misspelt subcommand with "A subcommand is required" instead of naming the stray word.
  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) throw CLI::RequiredError("a subcommand (phantom, inspect, serve, bench)");
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  try {
    if (app.got_subcommand("phantom")) run_phantom(phantom);
    if (app.got_subcommand("serve")) run_serve(serve);
    if (app.got_subcommand("inspect")) run_inspect(inspect);
    if (app.got_subcommand("bench")) run_bench(*app.get_subcommand("bench"), bench);
  } catch (const hds::config::ConfigError& error) {
    std::cerr << "hds-data-service: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "hds-data-service: error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

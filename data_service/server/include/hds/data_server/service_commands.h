// The subcommands of hds-data-service, one function each, and their registration on the command
// line (add_*_command), so that main.cpp only lists them. Each writes its report to `out` and
// throws what its parts throw (hds::config::ConfigError for a bad configuration, DataError,
// ControlError, RingError).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "config.pb.h"
#include "hds/common/command_line.h"
#include "hds/data_server/data_server.h"
#include "hds/data_server/produce_bench.h"

namespace hds::data_server {

// `phantom`: synthetic mammograms in the folder layout (phantom.h).
struct PhantomCommand {
  std::string out_dir;
  int count = 0;
  uint64_t seed = 0;
  int rows = 1024;
  int cols = 512;
  double mass_free_share = hds::config::PhantomConfig().mass_free_share();
};
void run_phantom_command(const PhantomCommand& command, std::ostream& out);

// A job configuration file and its --set overrides.
struct JobConfigArguments {
  std::string config_path;
  std::vector<std::string> overrides;
};

// `serve`: streams training batches to trainer ranks until SIGTERM or SIGINT (data_server.h);
// prints "ready: socket PATH" once listening, and then writes the ready file (whole, at once) if
// asked: "socket PATH\npid PID\n", removed again when the service stops. A launcher waits for
// that file: on a cluster, in a folder every node shares.
struct ServeCommand {
  JobConfigArguments job;
  std::string socket_path;  // "" = data.service_socket
  std::string job_id;       // "" = data.service_job_id
  // "": none. "%h" in it stands for this machine's short host name, so that one command line
  // run on every node of a job names a file per node.
  std::string ready_file;
  uint32_t slots = kDefaultSlotsPerRank;
  int workers = kDefaultWorkersPerRank;
  uint64_t ring_memory_mb = 0;  // 0: default_ring_budget
};
void run_serve_command(const ServeCommand& command, std::ostream& out);

// `inspect`: films, patients, masses, statistics, cache use and folds of a job's dataset.
void run_inspect_command(const JobConfigArguments& job, std::ostream& out);

// `export`: a job's films as its source holds them (before preprocessing: same size and grey
// levels) with their drawn masks, written in the folder layout (folder_writer.h), so that any
// source can be trained, inspected or shared as a `folder` dataset. Each film keeps its split
// (for mini-MIAS and INbreast the rotation's patient folds, data.fold).
struct ExportCommand {
  JobConfigArguments job;
  std::string out_dir;
  // Only these films, all in the training split (any film the source lists); empty: every film.
  std::vector<std::string> films;
  // The validation split is copies of the training films, named <id>-copy, and the test split is
  // empty: an overfit check, where the model is scored on the films it trains on.
  bool validate_on_copies = false;
  // Each film as training sees it before normalisation (largest bright region when asked, blank
  // columns cut, resized to data.image_rows x image_cols), in its source's bit depth (8-bit films
  // rounded to whole levels), with its mask at that size: a smaller dataset that trains like the
  // original at that size when read with data.breast_region WHOLE_FILM and data.blank_threshold 0.
  bool preprocessed = false;
};
void run_export_command(const ExportCommand& command, std::ostream& out);

// `bench produce`: one JSON line of augmented patches per second per worker thread.
void run_produce_bench_command(const JobConfigArguments& job, const ProduceBenchOptions& options,
                               std::ostream& out);

// Registration on `app` of each subcommand above and its options; reports go to `out`.
hds::common::Subcommand add_phantom_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_inspect_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_serve_command(CLI::App& app, std::ostream& out);
hds::common::Subcommand add_export_command(CLI::App& app, std::ostream& out);
// `bench ring` (ring_bench.h) and `bench produce`.
std::vector<hds::common::Subcommand> add_bench_commands(CLI::App& app, std::ostream& out);

}  // namespace hds::data_server

#include "hds/data_server/service_commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <utility>

#include "hds/common/exit_codes.h"
#include "hds/common/host_name.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/film_reader.h"
#include "hds/data/folder_writer.h"
#include "hds/data/inspect.h"
#include "hds/data/phantom.h"
#include "hds/data/preprocess.h"
#include "hds/data_server/data_server.h"
#include "hds/data_server/ring_bench.h"
#include "hds/data_server/service_metrics.h"

namespace hds::data_server {

using hds::data::DataError;
using hds::data::Dataset;
using hds::data::describe_dataset;
using hds::data::Film;
using hds::data::film_levels;
using hds::data::FilmList;
using hds::data::FilmReader;
using hds::data::FolderDatasetWriter;
using hds::data::load_dataset;
using hds::data::make_film_reader;
using hds::data::phantom_split;
using hds::data::preprocess_film;
using hds::data::preprocess_options_for;
using hds::data::PreprocessOptions;
using hds::data::RawFilm;
using hds::data::write_phantom_folder;

namespace {

hds::config::Config load(const JobConfigArguments& job) {
  return hds::config::load_config(job.config_path, job.overrides);
}

// (split, film id) pairs to export: the chosen films as training films, or every film of the
// dataset in its split.
std::vector<std::pair<std::string, std::string>> films_to_export(
    const ExportCommand& command, const hds::config::DataConfig& data, const FilmReader& reader) {
  std::vector<std::pair<std::string, std::string>> films;
  if (!command.films.empty()) {
    const FilmList& listed = reader.films();
    for (const std::string& id : command.films) {
      bool known = false;
      for (const std::vector<std::string>* ids : {&listed.train, &listed.val, &listed.test})
        known = known || std::find(ids->begin(), ids->end(), id) != ids->end();
      if (!known)
        throw DataError(
            "export: film '" + id + "' is not one of the " +
            std::to_string(listed.train.size() + listed.val.size() + listed.test.size()) +
            " films of data.source \"" + data.source() + "\" at " + data.root());
      films.emplace_back("train", id);
    }
    return films;
  }
  // The dataset decides the splits (folds for sources without split lists of their own).
  const Dataset dataset = load_dataset(data);
  for (const auto& [split, list] :
       {std::pair{"train", &dataset.train}, {"val", &dataset.val}, {"test", &dataset.test}}) {
    if (command.validate_on_copies && std::string(split) != "train") continue;
    for (const Film& film : *list) films.emplace_back(split, film.id);
  }
  return films;
}

// serve's ready file: written once the service listens, removed when it ends.
class ReadyFile {
 public:
  explicit ReadyFile(std::string pattern) : path_(std::move(pattern)) {
    for (size_t at; (at = path_.find("%h")) != std::string::npos;) {
      path_.replace(at, 2, hds::common::short_host_name());
    }
  }
  ~ReadyFile() {
    if (written_) ::unlink(path_.c_str());
  }
  ReadyFile(const ReadyFile&) = delete;
  ReadyFile& operator=(const ReadyFile&) = delete;

  void write(const std::string& text) {
    if (path_.empty()) return;
    std::error_code error;  // a launcher names a folder of the job's; a failure to write says why
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), error);
    hds::common::replace_file(path_, text);
    written_ = true;
  }

 private:
  std::string path_;
  bool written_ = false;
};

}  // namespace

void run_phantom_command(const PhantomCommand& command, std::ostream& out) {
  write_phantom_folder(command.out_dir, command.count, command.seed, command.rows, command.cols,
                       command.mass_free_share);
  std::map<std::string, int> split_sizes;
  for (int index = 0; index < command.count; ++index) ++split_sizes[phantom_split(index)];
  out << "wrote " << command.count << " phantom films of " << command.rows << "x" << command.cols
      << " (seed " << command.seed << ", mass-free share " << command.mass_free_share << ") to "
      << command.out_dir << ": img/<id>.png, label/<id>.png, split/train.txt ("
      << split_sizes["train"] << "), split/val.txt (" << split_sizes["val"] << "), split/test.txt ("
      << split_sizes["test"] << ")\n";
}

void run_serve_command(const ServeCommand& command, std::ostream& out) {
  const hds::config::Config config = load(command.job);
  ServeOptions options;
  options.socket_path =
      command.socket_path.empty() ? config.data().service_socket() : command.socket_path;
  options.job_id = command.job_id.empty() ? config.data().service_job_id() : command.job_id;
  if (options.socket_path.empty() || options.job_id.empty()) {
    throw hds::config::ConfigError(
        "serve: needs --socket and --job-id (or data.service_socket and data.service_job_id)");
  }
  options.slot_count = command.slots;
  options.workers_per_rank = command.workers;
  options.ring_memory_bytes = command.ring_memory_mb << 20;
  options.peer_timeout_seconds = config.data().service_timeout_seconds();
  // Served from the start, so that Prometheus sees the service while it loads the dataset.
  std::unique_ptr<ServiceMetrics> metrics;
  if (config.monitoring().metrics_port() != 0) {
    metrics = std::make_unique<ServiceMetrics>(config.monitoring());
    options.metrics = metrics.get();
    out << "metrics: " << metrics->url() << std::endl;
  }
  ReadyFile ready_file(command.ready_file);
  serve(config, options, [&] {
    out << "ready: socket " << options.socket_path << std::endl;
    ready_file.write("socket " + options.socket_path + "\npid " + std::to_string(getpid()) + "\n");
  });
}

void run_inspect_command(const JobConfigArguments& job, std::ostream& out) {
  const hds::config::Config config = load(job);
  out << describe_dataset(load_dataset(config.data()), config.data());
}

void run_export_command(const ExportCommand& command, std::ostream& out) {
  const hds::config::Config config = load(command.job);
  const std::unique_ptr<FilmReader> reader = make_film_reader(config.data());
  const auto films = films_to_export(command, config.data(), *reader);
  const PreprocessOptions preprocessing = preprocess_options_for(config.data());
  FolderDatasetWriter writer(command.out_dir);
  for (const auto& [split, id] : films) {
    RawFilm film = reader->read_film(id);
    if (command.preprocessed) {
      const Film preprocessed = preprocess_film(film.image, film.mask, preprocessing, id, "");
      film.image = film_levels(preprocessed, film.image.max_level == 255 ? 255 : 65535);
      film.mask = preprocessed.mask;
    }
    writer.add(split, id, film.image, film.mask);
    if (command.validate_on_copies && split == "train")
      writer.add("val", id + "-copy", film.image, film.mask);
  }
  writer.finish();
  out << "exported " << films.size() << " films of data.source \"" << config.data().source()
      << "\" to " << command.out_dir << ": train " << writer.count("train") << ", val "
      << writer.count("val")
      << (command.validate_on_copies ? " (copies of the training films)" : "") << ", test "
      << writer.count("test");
  if (command.preprocessed) {
    out << "; preprocessed to " << preprocessing.rows << "x" << preprocessing.cols
        << " (train them with data.breast_region WHOLE_FILM and data.blank_threshold 0)";
  }
  out << "\n";
}

void run_produce_bench_command(const JobConfigArguments& job, const ProduceBenchOptions& options,
                               std::ostream& out) {
  out << run_produce_benchmark(load(job), options).json() << std::endl;
}

// ---------------------------------------------------------------------------------------------
// The command line of each subcommand.

namespace {

using hds::common::add_config_options;

// An option with a range check that shows its default in --help.
template <class T>
void add_ranged(CLI::App& command, const std::string& name, T& value, const std::string& help,
                T low, T high) {
  command.add_option(name, value, help)->check(CLI::Range(low, high))->capture_default_str();
}

CLI::App* add_phantom_options(CLI::App& app, PhantomCommand& phantom) {
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

CLI::App* add_export_options(CLI::App& app, ExportCommand& command_options) {
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
  command->add_flag("--preprocessed", command_options.preprocessed,
                    "Write each film as training sees it before normalisation (breast region, "
                    "blank columns cut, resized to data.image_rows x image_cols) with its mask at "
                    "that size: a smaller dataset to ship or carry");
  return command;
}

CLI::App* add_serve_options(CLI::App& app, ServeCommand& serve) {
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

CLI::App* add_ring_bench_options(CLI::App& bench, RingBenchOptions& ring) {
  CLI::App* command = bench.add_subcommand(
      "ring", "Ring throughput between two processes, as a ratio to memcpy (target >= 0.7)");
  add_ranged(*command, "--batches", ring.batches, "Timed batches", 1, 1000000);
  add_ranged<uint32_t>(*command, "--slots", ring.slots, "Ring slots", 1, 1024);
  add_ranged(*command, "--patches", ring.patches, "Patches per batch", 1, 4096);
  add_ranged(*command, "--rows", ring.rows, "Patch rows", 1, 1 << 15);
  add_ranged(*command, "--cols", ring.cols, "Patch columns", 1, 1 << 15);
  return command;
}

CLI::App* add_produce_bench_options(CLI::App& bench, JobConfigArguments& job,
                                    ProduceBenchOptions& produce) {
  CLI::App* command = bench.add_subcommand(
      "produce",
      "Augmented patches per second per worker thread from the job's preprocessed films "
      "(target >= 2000 at 512x384)");
  add_config_options(*command, job.config_path, job.overrides);
  add_ranged(*command, "--threads", produce.threads, "Producing threads", 1,
             kMaxProduceBenchThreads);
  add_ranged(*command, "--batches", produce.batches, "Timed batches per thread", 1, 1000000);
  return command;
}

}  // namespace

hds::common::Subcommand add_phantom_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<PhantomCommand>();
  return {add_phantom_options(app, *command), [command, &out] {
            run_phantom_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

hds::common::Subcommand add_inspect_command(CLI::App& app, std::ostream& out) {
  auto job = std::make_shared<JobConfigArguments>();
  CLI::App* node = app.add_subcommand(
      "inspect", "Load a configuration's dataset and print films, patients, masses and folds");
  add_config_options(*node, job->config_path, job->overrides);
  return {node, [job, &out] {
            run_inspect_command(*job, out);
            return hds::common::kExitFinished;
          }};
}

hds::common::Subcommand add_serve_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<ServeCommand>();
  return {add_serve_options(app, *command), [command, &out] {
            run_serve_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

hds::common::Subcommand add_export_command(CLI::App& app, std::ostream& out) {
  auto command = std::make_shared<ExportCommand>();
  return {add_export_options(app, *command), [command, &out] {
            run_export_command(*command, out);
            return hds::common::kExitFinished;
          }};
}

std::vector<hds::common::Subcommand> add_bench_commands(CLI::App& app, std::ostream& out) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks; one JSON line each");
  bench->require_subcommand(1);
  auto ring = std::make_shared<RingBenchOptions>();
  auto job = std::make_shared<JobConfigArguments>();
  auto produce = std::make_shared<ProduceBenchOptions>();
  return {{add_ring_bench_options(*bench, *ring),
           [ring, &out] {
             out << run_ring_benchmark(*ring).json() << std::endl;
             return hds::common::kExitFinished;
           }},
          {add_produce_bench_options(*bench, *job, *produce), [job, produce, &out] {
             run_produce_bench_command(*job, *produce, out);
             return hds::common::kExitFinished;
           }}};
}

}  // namespace hds::data_server

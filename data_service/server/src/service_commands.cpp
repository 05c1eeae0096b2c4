#include "hds/data_server/service_commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <utility>

#include "hds/common/host_name.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/film_reader.h"
#include "hds/data/folder_writer.h"
#include "hds/data/inspect.h"
#include "hds/data/phantom.h"
#include "hds/data_server/data_server.h"
#include "hds/data_server/service_metrics.h"

namespace hds::data_server {

using hds::data::DataError;
using hds::data::Dataset;
using hds::data::describe_dataset;
using hds::data::Film;
using hds::data::FilmList;
using hds::data::FilmReader;
using hds::data::FolderDatasetWriter;
using hds::data::load_dataset;
using hds::data::make_film_reader;
using hds::data::phantom_split;
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
  FolderDatasetWriter writer(command.out_dir);
  for (const auto& [split, id] : films) {
    const RawFilm film = reader->read_film(id);
    writer.add(split, id, film.image, film.mask);
    if (command.validate_on_copies && split == "train")
      writer.add("val", id + "-copy", film.image, film.mask);
  }
  writer.finish();
  out << "exported " << films.size() << " films of data.source \"" << config.data().source()
      << "\" to " << command.out_dir << ": train " << writer.count("train") << ", val "
      << writer.count("val")
      << (command.validate_on_copies ? " (copies of the training films)" : "") << ", test "
      << writer.count("test") << "\n";
}

void run_produce_bench_command(const JobConfigArguments& job, const ProduceBenchOptions& options,
                               std::ostream& out) {
  out << run_produce_benchmark(load(job), options).json() << std::endl;
}

}  // namespace hds::data_server

// Loading, overriding and validating the job configuration (proto/config.proto, text format).
// Stateless free functions; thread-safe.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::config {

// Every configuration problem. what() names the source (file or --set), the line where known,
// the field path and the problem, e.g.
//   "deploy/configs/x.pbtxt:12: data.patch_rows = 500: must be a positive multiple of 128".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The paper's configuration (docs/design.md §3): every default, repeated fields filled in.
Config paper_config();

// Parses text-format `text` (named `source_name` in errors), applies `overrides` in order, fills
// empty repeated fields with the paper's lists and validates. Overrides look like
// "train.epochs=5", "model.widths=[8,8,16,16,16,16,16,16,16,8,8]", "loss.variant=HDS",
// "data.root=/data/x" (strings need no quotes). Throws ConfigError.
Config parse_config(const std::string& text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// Reads the file at `path` and does as parse_config. Throws ConfigError (also for an unreadable
// file).
// A configuration file longer than this is refused unread (the largest shipped one is a few KiB).
constexpr size_t kMaxConfigBytes = 1 << 20;
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// load_config of `path`, or the paper's configuration with `overrides` when `path` is "" (the
// commands whose --config is optional).
Config load_config_or_paper(const std::string& path,
                            const std::vector<std::string>& overrides = {});

// Checks value ranges and cross-field rules; throws ConfigError naming the field path. (Called
// by parse_config; exposed for configs built in code.)
void validate(const Config& config);

// The data sources this build reads (data.source): the list the validation, the readers'
// factory and `hds-launch cv` all go by.
enum class DataSourceKind { phantom, folder, mini_mias, inbreast };
struct DataSource {
  DataSourceKind kind;
  const char* name;    // as data.source spells it
  bool reads_files;    // under data.root (phantoms are made in memory)
  bool patient_folds;  // no split lists of its own: its films are divided into folds by patient
};
// Every source, in the order messages list them.
const std::vector<DataSource>& data_sources();
// The source named `name`, or null.
const DataSource* find_data_source(const std::string& name);
// "\"phantom\", \"folder\", \"mini-mias\" or \"inbreast\"", for messages.
std::string data_source_names();

// True when the source of `data` has no split lists of its own, so its films are divided into
// data.folds folds by patient: mini-mias and inbreast, and phantom with
// data.phantom.divide_into_folds (the readers and `hds-launch cv` ask this).
bool divides_into_folds(const DataConfig& data);

// Text format of `config`, every field written (what checkpoints and exports store).
std::string to_text(const Config& config);

// The port the trainer rank of `local_rank` serves its metrics on (monitoring.metrics_port +
// local rank), or 0 when the export is off.
int metrics_port(const MonitoringConfig& monitoring, int local_rank);
// The port the data service serves its metrics on (metrics_port + data_service_port_offset), or
// 0 when metrics are off.
int data_service_metrics_port(const MonitoringConfig& monitoring);

// The watchdog's limit on a collective or a step's computation: distributed.
// collective_timeout_seconds, or when that is 0, 60 s on CPU and 10 s on CUDA (a CPU step of the
// paper's patches takes about 16 s on two cores; a GPU step well under one).
double collective_timeout_seconds(const Config& config);

// Where a Prometheus on another machine reaches the metrics of a process on node `node`:
// metrics_address, or the node's name when that is a wildcard (0.0.0.0, ::: every interface).
std::string metrics_host(const MonitoringConfig& monitoring, const std::string& node);
// True when metrics_address serves its own machine only (127.x.x.x, ::1, localhost).
bool metrics_on_loopback(const MonitoringConfig& monitoring);

// Where the `local_ranks` trainer ranks of one node serve their metrics, for messages:
// "http://127.0.0.1:9400/metrics" ("http://<host>:..." for a wildcard address), with " (local ranks
// 0-1: ports 9400-9401)" for several ranks, then ", data service port 9500"; or "off
// (monitoring.metrics_port = 0)".
std::string describe_metrics_endpoints(const MonitoringConfig& monitoring, int local_ranks);

}  // namespace hds::config

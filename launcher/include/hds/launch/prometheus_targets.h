// Discovery, not guessing: every job tells Prometheus where its processes serve metrics, through
// a file-based service discovery file (Prometheus's file_sd_configs) named <job id>.json in
// monitoring.targets_dir, written when the job starts and removed when it ends. It lists every
// trainer rank (metrics_port + local rank on its node) and every node's data service
// (data_service_metrics_port), each labelled with
//   hds_job       the job id (ring names, logs)
//   node          the node's host name
//   role          "trainer" or "data_service"
//   rank          the trainer's global rank (trainers only; the process's own series say it too)
//   slurm_job_id  under Slurm
// deploy/prometheus/prometheus.yml scrapes runs/prometheus-targets/*.json with honor_labels, so
// the processes' own rank labels and the target's agree.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config.pb.h"

namespace hds::launch {

struct ScrapeTarget {
  std::string address;  // host:port
  std::map<std::string, std::string> labels;
};

// Where a job runs: its nodes in rank order (node i holds ranks i * ranks_per_node onwards).
struct JobPlacement {
  std::string job_id;
  std::vector<std::string> nodes;
  int ranks_per_node = 1;
  std::string slurm_job_id;  // "" outside Slurm
};

// The job's targets: each node's data service, then its trainer ranks. A node's processes are
// reached at monitoring.metrics_address, or at the node's name when that is a wildcard (0.0.0.0,
// ::). None when metrics are off.
std::vector<ScrapeTarget> job_targets(const hds::config::MonitoringConfig& monitoring,
                                      const JobPlacement& placement);

// The file_sd JSON of `targets`: a list of {"targets": [address], "labels": {...}}.
std::string file_sd_json(const std::vector<ScrapeTarget>& targets);

// The file of `job_id`: <targets_dir>/<job_id>.json, or "" when targets_dir is "" or metrics are
// off.
std::string targets_file_path(const hds::config::MonitoringConfig& monitoring,
                              const std::string& job_id);

// Writes the job's file (whole or not at all: Prometheus may read it at any moment), creating
// targets_dir; returns its path, "" when there is none to write. Throws LaunchError.
std::string write_targets_file(const hds::config::MonitoringConfig& monitoring,
                               const JobPlacement& placement);

}  // namespace hds::launch

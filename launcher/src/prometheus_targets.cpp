#include "hds/launch/prometheus_targets.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/launch/process.h"

namespace hds::launch {

namespace fs = std::filesystem;

std::vector<ScrapeTarget> job_targets(const hds::config::MonitoringConfig& monitoring,
                                      const JobPlacement& placement) {
  std::vector<ScrapeTarget> targets;
  if (monitoring.metrics_port() == 0) return targets;
  for (size_t node = 0; node < placement.nodes.size(); ++node) {
    const std::string& name = placement.nodes[node];
    const std::string host = hds::config::metrics_host(monitoring, name);
    std::map<std::string, std::string> labels{{"hds_job", placement.job_id}, {"node", name}};
    if (!placement.slurm_job_id.empty()) labels["slurm_job_id"] = placement.slurm_job_id;
    labels["role"] = "data_service";
    targets.push_back(
        {host + ":" + std::to_string(hds::config::data_service_metrics_port(monitoring)), labels});
    labels["role"] = "trainer";
    for (int local_rank = 0; local_rank < placement.ranks_per_node; ++local_rank) {
      labels["rank"] =
          std::to_string(static_cast<int>(node) * placement.ranks_per_node + local_rank);
      targets.push_back(
          {host + ":" + std::to_string(hds::config::metrics_port(monitoring, local_rank)), labels});
    }
  }
  return targets;
}

std::string file_sd_json(const std::vector<ScrapeTarget>& targets) {
  nlohmann::json groups = nlohmann::json::array();
  for (const ScrapeTarget& target : targets) {
    groups.push_back({{"targets", {target.address}}, {"labels", target.labels}});
  }
  return groups.dump(2) + "\n";
}

std::string targets_file_path(const hds::config::MonitoringConfig& monitoring,
                              const std::string& job_id) {
  if (monitoring.metrics_port() == 0 || monitoring.targets_dir().empty()) return "";
  return (fs::absolute(monitoring.targets_dir()) / (job_id + ".json")).string();
}

std::string write_targets_file(const hds::config::MonitoringConfig& monitoring,
                               const JobPlacement& placement) {
  const std::string path = targets_file_path(monitoring, placement.job_id);
  if (path.empty()) return "";
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  if (error) {
    throw LaunchError("cannot create " + fs::path(path).parent_path().string() +
                      " (monitoring.targets_dir): " + error.message());
  }
  // Prometheus reads only files ending in .json: the partial one is invisible to it.
  try {
    hds::common::replace_file(path, file_sd_json(job_targets(monitoring, placement)));
  } catch (const hds::common::FileWriteError& e) {
    throw LaunchError(std::string(e.what()) + " (monitoring.targets_dir)");
  }
  return path;
}

}  // namespace hds::launch

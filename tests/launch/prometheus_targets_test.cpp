// The file-SD targets of a job: every node's data service and ranks with their ports and labels,
// the address a wildcard listener is reached at, and the file written whole and named per job.
#include "hds/launch/prometheus_targets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hds/config/config.h"
#include "hds/test/files.h"

namespace hds::launch {
namespace {

namespace fs = std::filesystem;

hds::config::MonitoringConfig monitoring(const std::string& address, const std::string& dir) {
  hds::config::MonitoringConfig m;
  m.set_metrics_port(9400);
  m.set_metrics_address(address);
  m.set_data_service_port_offset(100);
  m.set_targets_dir(dir);
  return m;
}

TEST(PrometheusTargets, two_nodes_of_two_ranks_with_slurm_labels_at_the_node_names) {
  const auto targets =
      job_targets(monitoring("0.0.0.0", "t"), {"slurm-77-0", {"gpu1", "gpu2"}, 2, "77"});
  ASSERT_EQ(targets.size(), 6u);
  // Node 1: its data service, then global ranks 2 and 3 at local ports 9400 and 9401.
  EXPECT_EQ(targets[3].address, "gpu2:9500");
  EXPECT_EQ(targets[3].labels.at("role"), "data_service");
  EXPECT_EQ(targets[3].labels.count("rank"), 0u);
  EXPECT_EQ(targets[5].address, "gpu2:9401");
  EXPECT_EQ(targets[5].labels, (std::map<std::string, std::string>{{"hds_job", "slurm-77-0"},
                                                                   {"node", "gpu2"},
                                                                   {"role", "trainer"},
                                                                   {"rank", "3"},
                                                                   {"slurm_job_id", "77"}}));
  EXPECT_EQ(targets[1].address, "gpu1:9400");
  EXPECT_EQ(targets[1].labels.at("rank"), "0");
}

TEST(PrometheusTargets, a_specific_address_is_used_as_is_and_metrics_off_lists_nothing) {
  auto config = monitoring("127.0.0.1", "t");
  const auto targets = job_targets(config, {"job", {"host"}, 1, ""});
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].address, "127.0.0.1:9500");
  EXPECT_EQ(targets[1].address, "127.0.0.1:9400");
  EXPECT_EQ(targets[1].labels.count("slurm_job_id"), 0u);
  config.set_metrics_port(0);
  EXPECT_TRUE(job_targets(config, {"job", {"host"}, 1, ""}).empty());
  EXPECT_EQ(targets_file_path(config, "job"), "");
}

TEST(PrometheusTargets, the_file_is_one_group_per_target_named_after_the_job) {
  const std::string dir = hds::test::scratch_dir("prometheus-targets") + "/deep/targets";
  const auto config = monitoring("127.0.0.1", dir);
  const std::string path = write_targets_file(config, {"job-1", {"host"}, 2, ""});
  EXPECT_EQ(path, fs::absolute(dir + "/job-1.json").string());
  EXPECT_FALSE(fs::exists(path + ".partial"));
  const auto groups = nlohmann::json::parse(hds::test::read_text(path));
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[2]["targets"], nlohmann::json::array({"127.0.0.1:9401"}));
  EXPECT_EQ(groups[2]["labels"]["rank"], "1");
  EXPECT_EQ(groups[0]["labels"]["role"], "data_service");
  auto off = config;
  off.set_targets_dir("");
  EXPECT_EQ(write_targets_file(off, {"job-2", {"host"}, 1, ""}), "");
  EXPECT_FALSE(fs::exists(dir + "/job-2.json"));
}

}  // namespace
}  // namespace hds::launch

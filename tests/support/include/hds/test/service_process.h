// A real `hds-data-service serve` for tests of its clients (the test target defines
// HDS_DATA_SERVICE_BINARY). Stopped with SIGTERM on destruction, as a launcher stops it.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "hds/config/config.h"
#include "hds/test/child_process.h"

namespace hds::test {

// A job id no other test of this process uses: "<what>-<pid>-<n>".
inline std::string unique_job(const std::string& what) {
  static int counter = 0;
  return what + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// `hds-data-service serve` on `config` (written out in full), with its socket in `dir`.
class ServiceProcess {
 public:
  // `job` "" picks a fresh job id.
  ServiceProcess(const hds::config::Config& config, const std::string& dir,
                 const std::string& job = "")
      : job_(job.empty() ? unique_job("trainer") : job), socket_(socket_in(dir)) {
    const std::string config_file = (std::filesystem::path(dir) / "service.pbtxt").string();
    std::ofstream(config_file) << hds::config::to_text(config);
    process_ = std::make_unique<ChildProcess>(
        HDS_DATA_SERVICE_BINARY,
        // No metrics: tests run side by side and would contend for the default port.
        std::vector<std::string>{"serve", "--config", config_file, "--socket", socket_, "--job-id",
                                 job_, "--set", "monitoring.metrics_port=0"});
    ready_ = process_->wait_for_output("ready: socket " + socket_, 60);
  }
  // Stops the service as a launcher would: SIGTERM, after which nothing of it is left.
  ~ServiceProcess() {
    process_->signal(SIGTERM);
    process_->wait_exit(10);
  }
  static std::string socket_in(const std::string& dir) {
    return (std::filesystem::path(dir) / "run" / "data.sock").string();
  }
  bool ready() const { return ready_; }
  const std::string& job() const { return job_; }
  const std::string& socket() const { return socket_; }
  ChildProcess& process() { return *process_; }

 private:
  std::string job_;
  std::string socket_;
  std::unique_ptr<ChildProcess> process_;
  bool ready_ = false;
};

}  // namespace hds::test

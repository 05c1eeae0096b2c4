#include "hds/launch/tools.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hds/common/host_name.h"
#include "hds/common/job_id.h"
#include "hds/launch/process.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

bool is_executable_file(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error) && ::access(path.c_str(), X_OK) == 0;
}

// The explicit path, else the environment variable's: checked, made absolute. "" when neither.
std::string given_program(const std::string& name, const std::string& explicit_path,
                          const std::string& environment_variable) {
  std::string path = explicit_path;
  std::string origin = "--" + name;
  if (path.empty()) {
    path = environment(environment_variable);
    origin = "$" + environment_variable;
  }
  if (path.empty()) return "";
  if (!is_executable_file(path)) {
    throw UsageError(origin + " = " + path + ": not an executable file");
  }
  return fs::absolute(path).lexically_normal().string();
}

}  // namespace

std::string environment(const std::string& name) {
  const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
  return value == nullptr ? "" : value;
}

std::string own_directory() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) throw LaunchError("cannot read /proc/self/exe: " + error.message());
  return self.parent_path().string();
}

std::string find_project_program(const std::string& name, const std::string& build_tree_folder,
                                 const std::string& explicit_path,
                                 const std::string& environment_variable) {
  if (std::string given = given_program(name, explicit_path, environment_variable);
      !given.empty()) {
    return given;
  }
  const fs::path here = own_directory();
  const std::vector<fs::path> candidates = {here / name,
                                            (here.parent_path() / build_tree_folder / name)};
  for (const fs::path& candidate : candidates) {
    if (is_executable_file(candidate)) return candidate.lexically_normal().string();
  }
  throw LaunchError("cannot find " + name + ": looked in " + candidates[0].string() + " and " +
                    candidates[1].lexically_normal().string() + "; give --" + name +
                    " PATH or set " + environment_variable);
}

std::string find_system_program(const std::string& name, const std::string& explicit_path,
                                const std::string& environment_variable) {
  if (std::string given = given_program(name, explicit_path, environment_variable);
      !given.empty()) {
    return given;
  }
  std::istringstream path(environment("PATH"));
  std::string folder;
  while (std::getline(path, folder, ':')) {
    const fs::path candidate = fs::path(folder.empty() ? "." : folder) / name;
    if (is_executable_file(candidate)) return fs::absolute(candidate).string();
  }
  throw LaunchError("cannot find " + name + " on PATH; install it or give --" + name +
                    " PATH (or set " + environment_variable + ")");
}

std::string default_job_id() {
  const std::string short_host = hds::common::short_host_name();
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  std::string id = short_host.substr(0, 32) + "-" + std::to_string(getpid()) + "-" + stamp;
  for (char& c : id) {
    if (!hds::common::is_job_id_character(c)) c = '_';
  }
  return id;
}

void check_job_id(const std::string& job_id) {
  if (!hds::common::is_valid_job_id(job_id)) {
    throw UsageError("--job-id: job id \"" + job_id + "\": must be " + hds::common::kJobIdRule);
  }
}

std::vector<std::string> leftover_rings(const std::string& job_id) {
  const std::string prefix = hds::common::ring_file_prefix(job_id);
  std::vector<std::string> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/dev/shm", error)) {
    const std::string name = entry.path().filename().string();
    const std::string rank = name.substr(std::min(name.size(), prefix.size()));
    if (name.rfind(prefix, 0) == 0 && !rank.empty() &&
        std::all_of(rank.begin(), rank.end(), [](char c) { return std::isdigit(c); })) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string joined;
  for (const std::string& part : parts) joined += (joined.empty() ? "" : separator) + part;
  return joined;
}

std::string shell_quote(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string("/._-+=:,@%").find(c) != std::string::npos;
  });
  if (safe) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string absolute_output_dir(const hds::config::Config& config) {
  return fs::absolute(config.train().output_dir()).lexically_normal().string();
}

std::string last_lines(const std::string& path, int count) {
  std::ifstream file(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > count) lines.pop_front();
  }
  std::string text;
  for (const std::string& line : lines) text += "  | " + line + "\n";
  return text;
}

std::string checkpoint_argument(const std::string& option, const std::string& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    throw UsageError(option + " " + path +
                     ": not a directory (give a checkpoint or a run's checkpoints/ folder)");
  }
  return fs::absolute(path).lexically_normal().string();
}

std::string service_reconnect_assignment(double ready_timeout_seconds) {
  // The margin covers the service's start before it loads and the ranks' next reconnect attempt.
  constexpr double kMarginSeconds = 20;
  std::ostringstream text;
  text << "data.service_reconnect_seconds=" << ready_timeout_seconds + kMarginSeconds;
  return text.str();
}

}  // namespace hds::launch

// What both launch modes need: finding the binaries they drive, naming a job, quoting for the
// shell, reading a configuration's output directory. Stateless free functions.
#pragma once

#include <string>
#include <vector>

#include "hds/config/config.h"

namespace hds::launch {

// The value of the environment variable `name`, or "" when it is unset (or `name` is "").
std::string environment(const std::string& name);

// The directory holding this executable (readlink /proc/self/exe).
std::string own_directory();

// A program of this project: `explicit_path` when given, else $`environment_variable`, else
// `name` beside this executable, else in `build_tree_folder` beside this executable's folder
// (the build tree: build/launcher/hds-launch, build/trainer/hds-trainer). The result is an
// absolute path to an executable file. Throws LaunchError naming every place it looked.
std::string find_project_program(const std::string& name, const std::string& build_tree_folder,
                                 const std::string& explicit_path,
                                 const std::string& environment_variable);

// A system program (mpirun, sbatch): `explicit_path`, else $`environment_variable`, else the
// first `name` on PATH. Throws LaunchError when there is none.
std::string find_system_program(const std::string& name, const std::string& explicit_path,
                                const std::string& environment_variable);

// A job id unique on this machine and readable: "<host>-<pid>-<yyyymmdd-hhmmss>", reduced to the
// characters a ring name allows.
std::string default_job_id();

// Throws UsageError unless `job_id` follows hds::common::kJobIdRule (it names the rings).
void check_job_id(const std::string& job_id);

// The shared-memory segments a data service with `job_id` may leave behind that exist now
// (/dev/shm/<hds::common::ring_file_prefix(job_id)><rank>).
std::vector<std::string> leftover_rings(const std::string& job_id);

// `text` as one shell word: single-quoted unless it holds only safe characters.
std::string shell_quote(const std::string& text);

// The parts with `separator` between them: join({"a", "b"}, " and ") is "a and b".
std::string join(const std::vector<std::string>& parts, const std::string& separator);

// `config.train().output_dir()` made absolute against the current directory.
std::string absolute_output_dir(const hds::config::Config& config);

// The last `count` lines of the file at `path` ("" when unreadable), for error messages.
std::string last_lines(const std::string& path, int count);

// The absolute form of a checkpoint directory given to `option` (--resume, --init-from): the
// trainers may run elsewhere (another working directory, another node). Throws UsageError when it
// is not a directory.
std::string checkpoint_argument(const std::string& option, const std::string& path);

// The --set a launcher with restarts gives its trainers, so that they wait for a data service
// restarted in place: "data.service_reconnect_seconds=<the service's load allowance + 20 s>".
std::string service_reconnect_assignment(double ready_timeout_seconds);

}  // namespace hds::launch

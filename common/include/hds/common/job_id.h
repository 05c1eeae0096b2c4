// The job id rule and the shared-memory ring names derived from it, written once: the
// configuration validates data.service_job_id with it, the data service names its rings with it,
// and the launcher checks --job-id and looks for rings a job left behind with it.
// Stateless free functions; thread-safe.
#pragma once

#include <stdexcept>
#include <string>

namespace hds::common {

// What a job id may be, for messages.
constexpr const char* kJobIdRule = "1 to 64 characters of letters, digits, '_' and '-'";
constexpr std::size_t kMaxJobIdLength = 64;

// True for the characters kJobIdRule allows (ASCII letters, digits, '_' and '-').
bool is_job_id_character(char c);

// True when `job_id` follows kJobIdRule (it becomes part of a POSIX shm name and a file name).
bool is_valid_job_id(const std::string& job_id);

// The POSIX shared-memory name of `rank`'s ring in job `job_id`: "/hds-<job_id>-r<rank>", which
// Linux shows as /dev/shm/hds-<job_id>-r<rank>. Throws std::invalid_argument naming the job id
// or the rank when the id breaks kJobIdRule or the rank is negative.
std::string ring_name(const std::string& job_id, int rank);

// The part of every ring name of `job_id` before the rank, without the leading '/':
// "hds-<job_id>-r" (what a /dev/shm entry of the job starts with).
std::string ring_file_prefix(const std::string& job_id);

}  // namespace hds::common

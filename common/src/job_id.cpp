#include "hds/common/job_id.h"

#include <algorithm>

namespace hds::common {

bool is_job_id_character(char c) {
  // Plain ASCII comparisons: std::isalnum would follow the locale.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_valid_job_id(const std::string& job_id) {
  return !job_id.empty() && job_id.size() <= kMaxJobIdLength &&
         std::all_of(job_id.begin(), job_id.end(), is_job_id_character);
}

std::string ring_file_prefix(const std::string& job_id) { return "hds-" + job_id + "-r"; }

std::string ring_name(const std::string& job_id, int rank) {
  if (!is_valid_job_id(job_id)) {
    throw std::invalid_argument("job id \"" + job_id + "\": must be " + kJobIdRule);
  }
  if (rank < 0)
    throw std::invalid_argument("rank " + std::to_string(rank) + ": must be non-negative");
  return "/" + ring_file_prefix(job_id) + std::to_string(rank);
}

}  // namespace hds::common

// This machine's name as the job's files and labels give it (ready files, Prometheus targets,
// default job ids): one rule for every component.
#pragma once

#include <string>

namespace hds::common {

// The host name up to the first dot.
std::string short_host_name();

}  // namespace hds::common

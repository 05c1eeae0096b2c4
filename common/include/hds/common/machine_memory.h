// What this machine has to spare, for the budgets that keep a job from taking it down (films
// decoded at once, shared-memory rings). Stateless free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace hds::common {

// Memory the kernel could hand out now without swapping: MemAvailable of /proc/meminfo (free
// memory plus reclaimable caches), else free physical pages; 0 when neither can be read.
uint64_t available_memory_bytes();

// Free bytes of the file system holding `path` (statvfs: what an unprivileged user may use); 0
// when it cannot be read.
uint64_t free_bytes_at(const std::string& path);

}  // namespace hds::common

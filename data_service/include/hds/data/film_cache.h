// Preprocessed films on disk (docs/design.md §4: preprocess once). One file per film, named by a
// key built from everything that determines the result: the source file's bytes, its annotation and
// the preprocessing parameters, so a changed file or parameter simply misses. Entries are
// written to a unique temporary name and renamed into place, so two processes building the same
// dataset at once never see a partial entry. Read through mmap; every entry carries a CRC-32.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hds/data/dataset.h"

namespace hds::data {

// 128 bits from two independent 64-bit hashes of the length-prefixed parts.
struct CacheKey {
  uint64_t high = 0;
  uint64_t low = 0;
  std::string hex() const;
  bool operator==(const CacheKey& other) const { return high == other.high && low == other.low; }
};
CacheKey make_cache_key(const std::vector<std::string_view>& parts);

class FilmCache {
 public:
  // `dir` is created (mode 0700) when missing. Throws DataError when it cannot be.
  explicit FilmCache(std::string dir);

  // The un-normalised film (with its patient and mass count) stored under `key`, named `id`, or
  // nullopt when there is none. A damaged entry (short, wrong magic or key, CRC mismatch) is
  // removed and counts as a miss.
  std::optional<Film> load(const CacheKey& key, const std::string& id) const;

  // Stores `film` under `key`. A failure (full disk) is reported as DataError naming the file;
  // the cache stays consistent.
  void store(const CacheKey& key, const Film& film) const;

  const std::string& dir() const { return dir_; }
  int hits() const { return hits_; }
  int misses() const { return misses_; }

 private:
  std::string path_of(const CacheKey& key) const;
  std::string dir_;
  mutable std::atomic<int> hits_{0};
  mutable std::atomic<int> misses_{0};
};

}  // namespace hds::data

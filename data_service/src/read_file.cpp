#include "read_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hds/data/dataset.h"

namespace hds::data::detail {

std::string read_whole_file(const std::string& path) {
  // A directory opens as a stream and reads as empty, which would pass for an empty file.
  if (std::filesystem::is_directory(path)) throw DataError(path + ": is a directory, not a file");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw DataError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << file.rdbuf();
  if (file.bad()) throw DataError(path + ": cannot read: " + std::strerror(errno));
  return bytes.str();
}

}  // namespace hds::data::detail

#include "hds/common/read_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hds::common {

std::string read_whole_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    throw FileReadError(path + ": is a directory, not a file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw FileReadError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << file.rdbuf();
  if (file.bad()) throw FileReadError(path + ": cannot read: " + std::strerror(errno));
  return bytes.str();
}

void write_whole_file(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.flush();
  if (!file) throw FileWriteError(path + ": write failed: " + std::strerror(errno));
}

void replace_file(const std::string& path, const std::string& bytes) {
  const std::string partial = path + ".partial";
  try {
    write_whole_file(partial, bytes);
  } catch (const FileWriteError&) {
    std::remove(partial.c_str());
    throw;
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(partial.c_str());
    throw FileWriteError(path + ": write failed: cannot rename " + partial + ": " + reason);
  }
}

}  // namespace hds::common

#include "hds/common/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hds::common {

std::string read_whole_file(const std::string& path, size_t max_bytes) {
  if (std::filesystem::is_directory(path)) {
    throw FileReadError(path + ": is a directory, not a file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw FileReadError(path + ": cannot open: " + std::strerror(errno));
  if (max_bytes == SIZE_MAX) {
    std::ostringstream bytes;
    bytes << file.rdbuf();
    if (file.bad()) throw FileReadError(path + ": cannot read: " + std::strerror(errno));
    return bytes.str();
  }
  std::string bytes;
  char chunk[65536];
  while (file.read(chunk, sizeof chunk) || file.gcount() > 0) {
    bytes.append(chunk, static_cast<size_t>(file.gcount()));
    if (bytes.size() > max_bytes) {
      throw FileReadError(path + ": longer than " + std::to_string(max_bytes) +
                          " bytes: read no further");
    }
  }
  if (file.bad()) throw FileReadError(path + ": cannot read: " + std::strerror(errno));
  return bytes;
}

void write_whole_file(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.flush();
  if (!file) throw FileWriteError(path + ": write failed: " + std::strerror(errno));
}

void replace_file(const std::string& path, const std::string& bytes) {
  replace_file_by(path, [&bytes](const std::string& partial) { write_whole_file(partial, bytes); });
}

void replace_file_by(const std::string& path,
                     const std::function<void(const std::string& partial_path)>& write) {
  static std::atomic<uint64_t> writes{0};
  const std::string partial =
      path + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(writes++);
  try {
    write(partial);
  } catch (...) {
    std::remove(partial.c_str());
    throw;
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(partial.c_str());
    throw FileWriteError(path + ": write failed: cannot rename " + partial + ": " + reason);
  }
}

void append_record(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw FileWriteError(path + ": write failed: " + std::strerror(errno));
  const off_t before = ::lseek(fd, 0, SEEK_END);
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? std::strerror(errno) : "nothing written";
      const bool cut = before >= 0 && ::ftruncate(fd, before) == 0;
      ::close(fd);
      throw FileWriteError(path + ": write failed: " + reason +
                           (cut ? "" : " (a partial record may remain at its end)"));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace hds::common

#include "hds/launch/job_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <thread>

#include "hds/common/job_id.h"
#include "hds/launch/process.h"
#include "hds/launch/tools.h"

namespace hds::launch {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockFolder = "/dev/shm";
constexpr const char* kLockSuffix = ".lock";
constexpr size_t kMaxRecordBytes = 64 * 1024;  // a record is a few lines
// How long a launch waits for a lock that a cleaner holds for a moment (its holder is dead).
constexpr double kCleanerWaitSeconds = 2;

using Record = std::vector<std::pair<std::string, std::string>>;  // key, value

bool is_file_kind(const std::string& kind) { return kind == "targets_file" || kind == "socket"; }
bool is_folder_kind(const std::string& kind) {
  return kind == "socket_directory" || kind == "segment_directory";
}

// True when `path` still names the file open as `fd` (its holder may have removed it meanwhile).
bool same_file(int fd, const std::string& path) {
  struct stat open_file {
  }, named{};
  return ::fstat(fd, &open_file) == 0 && ::lstat(path.c_str(), &named) == 0 &&
         open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
}

Record read_record(int fd) {
  std::string text(kMaxRecordBytes, '\0');
  const ssize_t got = ::pread(fd, text.data(), text.size(), 0);
  text.resize(got > 0 ? static_cast<size_t>(got) : 0);
  Record record;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t space = line.find(' ');
    if (space != std::string::npos)
      record.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return record;
}

std::string value_of(const Record& record, const std::string& key) {
  for (const auto& [k, v] : record) {
    if (k == key) return v;
  }
  return "";
}

// "pid 123, started 2026-12-04 10:00:00", or what is known of it.
std::string owner_text(const Record& record) {
  const std::string pid = value_of(record, "pid"), started = value_of(record, "started");
  if (pid.empty()) return "owner not recorded yet";
  return "pid " + pid + (started.empty() ? "" : ", started " + started);
}

bool process_alive(const std::string& pid_text) {
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(pid_text));
  } catch (const std::exception&) {
    return false;
  }
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// Removes what a dead holder of `job_id`'s lock recorded, and the job's rings.
void remove_leftovers(const std::string& job_id, const Record& record, std::ostream& messages) {
  const std::string whose = "abandoned job " + job_id + " (launcher " + owner_text(record) + ")";
  for (const auto& [kind, path] : record) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) continue;
    std::error_code error;
    if (is_file_kind(kind) && (S_ISREG(status.st_mode) || S_ISSOCK(status.st_mode))) {
      fs::remove(path, error);
    } else if (is_folder_kind(kind) && S_ISDIR(status.st_mode)) {
      fs::remove_all(path, error);
    } else {
      continue;
    }
    messages << "hds-launch: removed " << path << " (" << kind << " of " << whose << ")"
             << (error ? ": " + error.message() : "") << std::endl;
  }
  for (const std::string& ring : leftover_rings(job_id)) {
    ::unlink(ring.c_str());
    messages << "hds-launch: removed ring " << ring << " of " << whose << std::endl;
  }
}

std::string now_text() {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return text;
}

}  // namespace

std::string job_lock_path(const std::string& job_id) {
  return std::string(kLockFolder) + "/hds-" + job_id + kLockSuffix;
}

JobLock::JobLock(std::string job_id, std::string path, int fd)
    : job_id_(std::move(job_id)), path_(std::move(path)), fd_(fd) {}

JobLock::JobLock(JobLock&& other) noexcept
    : job_id_(std::move(other.job_id_)),
      path_(std::move(other.path_)),
      fd_(other.fd_),
      entries_(std::move(other.entries_)) {
  other.fd_ = -1;
}

JobLock::~JobLock() {
  if (fd_ < 0) return;
  // Removed while held: whoever opens the name next makes a new lock file.
  ::unlink(path_.c_str());
  ::close(fd_);
}

JobLock JobLock::acquire(const std::string& job_id, std::ostream& messages) {
  check_job_id(job_id);
  const std::string path = job_lock_path(job_id);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(kCleanerWaitSeconds);
  for (;;) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      throw LaunchError("job id " + job_id + ": cannot open its lock " + path + ": " +
                        std::strerror(errno) +
                        (errno == EACCES ? " (another user's job has this id)" : ""));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (!same_file(fd, path)) {  // its last holder removed it as we opened it
        ::close(fd);
        continue;
      }
      JobLock lock(job_id, path, fd);
      // A record means a dead holder: what it recorded, and the rings of its id, are leftovers.
      // Without one, rings of this id may be a service started by other means: not touched.
      const Record previous = read_record(fd);
      if (!previous.empty()) remove_leftovers(job_id, previous, messages);
      lock.write_record();
      return lock;
    }
    const int error = errno;
    const Record owner = read_record(fd);
    ::close(fd);
    if (error != EWOULDBLOCK) {
      throw LaunchError("job id " + job_id + ": cannot lock " + path + ": " + std::strerror(error));
    }
    // A cleaner holds a dead job's lock for a moment; a live owner keeps it.
    if (process_alive(value_of(owner, "pid")) || std::chrono::steady_clock::now() > deadline) {
      throw LaunchError("job id " + job_id + " is in use by a running hds-launch (" +
                        owner_text(owner) + ", lock " + path +
                        "): give another --job-id; nothing was started or removed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void JobLock::record(const std::string& kind, const std::string& path) {
  if (!is_file_kind(kind) && !is_folder_kind(kind)) {
    throw std::invalid_argument("JobLock::record: unknown kind \"" + kind + "\"");
  }
  // One line a record: a path with a line break cannot be written (nor removed later).
  if (path.empty() || path.find('\n') != std::string::npos) return;
  entries_.emplace_back(kind, fs::absolute(path).string());
  write_record();
}

void JobLock::write_record() const {
  std::ostringstream text;
  text << "pid " << ::getpid() << "\nstarted " << now_text() << "\n";
  for (const auto& [kind, path] : entries_) text << kind << " " << path << "\n";
  const std::string bytes = text.str();
  // Best effort: a record that cannot be written only means less to clean after a crash.
  if (::ftruncate(fd_, 0) != 0) return;
  [[maybe_unused]] const ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), 0);
}

int clean_abandoned_jobs(std::ostream& messages) {
  int cleaned = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(kLockFolder, error)) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = kLockSuffix;
    if (name.rfind("hds-", 0) != 0 || name.size() <= 4 + suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string job_id = name.substr(4, name.size() - 4 - suffix.size());
    if (!hds::common::is_valid_job_id(job_id)) continue;
    const std::string path = entry.path().string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;  // gone meanwhile, or another user's
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && same_file(fd, path)) {
      remove_leftovers(job_id, read_record(fd), messages);
      ::unlink(path.c_str());
      messages << "hds-launch: removed " << path << " (lock of abandoned job " << job_id << ")"
               << std::endl;
      ++cleaned;
    }
    ::close(fd);
  }
  return cleaned;
}

}  // namespace hds::launch

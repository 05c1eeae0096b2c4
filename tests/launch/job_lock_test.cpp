// The job lock: one live launch per job id; what a dead launch recorded is removed by the next
// holder of its id or by `clean`, and nothing of a live one is touched.
#include "hds/launch/job_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "hds/launch/process.h"
#include "hds/launch/tools.h"
#include "hds/test/files.h"

namespace hds::launch {
namespace {
namespace fs = std::filesystem;

std::string unique_job(const std::string& what) {
  return "lock-test-" + what + "-" + std::to_string(getpid());
}

// What a launch creates: a targets file, a socket folder holding a socket, a segment folder, and
// rank 0's ring in /dev/shm.
struct JobFiles {
  std::string targets, socket_directory, segment_directory, ring;
  std::vector<std::string> all() const {
    return {targets, socket_directory, segment_directory, ring};
  }
};

JobFiles make_job_files(const std::string& dir, const std::string& job_id) {
  JobFiles files;
  files.targets = dir + "/targets/" + job_id + ".json";
  files.socket_directory = dir + "/socket";
  files.segment_directory = dir + "/segments";
  files.ring = "/dev/shm/hds-" + job_id + "-r0";
  fs::create_directories(dir + "/targets");
  fs::create_directories(files.segment_directory + "/vader");
  fs::create_directories(files.socket_directory);
  std::ofstream(files.targets) << "[]\n";
  std::ofstream(files.segment_directory + "/vader/segment") << "x";
  std::ofstream(files.ring) << "ring";
  // A real socket, as the data service leaves it.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket = files.socket_directory + "/data.sock";
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  return files;
}

void record_all(JobLock& lock, const JobFiles& files) {
  lock.record("targets_file", files.targets);
  lock.record("socket_directory", files.socket_directory);
  lock.record("segment_directory", files.segment_directory);
}

// A child process takes the lock of `job_id`, records `files` and dies by SIGKILL: a launcher
// killed mid-job.
void die_holding_the_lock(const std::string& job_id, const JobFiles& files) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ostringstream quiet;
    JobLock lock = JobLock::acquire(job_id, quiet);
    record_all(lock, files);
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_TRUE(fs::exists(job_lock_path(job_id))) << "the dead launch's lock file stays";
}

void expect_all_removed(const JobFiles& files, const std::string& said) {
  for (const std::string& path : files.all()) {
    EXPECT_FALSE(fs::exists(path)) << path;
    EXPECT_NE(said.find(path), std::string::npos) << path << " not named in:\n" << said;
  }
}

// One test, its parts in turn: clean_abandoned_jobs acts on every abandoned lock of the machine,
// so parts run side by side (ctest -j) would clean each other's dead holders.
TEST(JobLock, one_live_holder_an_id_and_what_a_dead_one_recorded_is_removed_once) {
  {
    SCOPED_TRACE("a second launch of a live id is refused and removes nothing");
    const std::string job = unique_job("live");
    const JobFiles files = make_job_files(hds::test::scratch_dir("lock-live"), job);
    std::ostringstream messages;
    {
      JobLock live = JobLock::acquire(job, messages);
      record_all(live, files);
      try {
        JobLock::acquire(job, messages);
        ADD_FAILURE() << "a second lock of a held id";
      } catch (const LaunchError& e) {
        EXPECT_NE(std::string(e.what()).find("job id " + job +
                                             " is in use by a running hds-launch (pid " +
                                             std::to_string(getpid())),
                  std::string::npos)
            << e.what();
      }
      std::ostringstream cleaning;
      clean_abandoned_jobs(cleaning);
      EXPECT_EQ(cleaning.str().find(job), std::string::npos) << cleaning.str();
      EXPECT_TRUE(fs::exists(job_lock_path(job)));
      for (const std::string& path : files.all()) EXPECT_TRUE(fs::exists(path)) << path;
    }
    EXPECT_FALSE(fs::exists(job_lock_path(job))) << "released with its file";
    EXPECT_EQ(messages.str(), "");
    for (const std::string& path : files.all()) fs::remove_all(path);
  }
  {
    SCOPED_TRACE("clean removes what a killed launch recorded");
    const std::string job = unique_job("clean");
    const JobFiles files = make_job_files(hds::test::scratch_dir("lock-clean"), job);
    ASSERT_NO_FATAL_FAILURE(die_holding_the_lock(job, files));
    std::ostringstream said;
    EXPECT_GE(clean_abandoned_jobs(said), 1);
    expect_all_removed(files, said.str());
    EXPECT_FALSE(fs::exists(job_lock_path(job)));
    EXPECT_NE(said.str().find("abandoned job " + job), std::string::npos) << said.str();
  }
  {
    SCOPED_TRACE("the next holder of a dead launch's id removes its leftovers first");
    const std::string job = unique_job("reuse");
    const JobFiles files = make_job_files(hds::test::scratch_dir("lock-reuse"), job);
    ASSERT_NO_FATAL_FAILURE(die_holding_the_lock(job, files));
    std::ostringstream said;
    {
      JobLock lock = JobLock::acquire(job, said);
      expect_all_removed(files, said.str());
      EXPECT_TRUE(fs::exists(job_lock_path(job)));
    }
    EXPECT_FALSE(fs::exists(job_lock_path(job)));
  }
}

}  // namespace
}  // namespace hds::launch

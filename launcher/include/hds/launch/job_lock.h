// One live launch per job id on a machine. A job id names machine-wide things (its rings in
// /dev/shm, its Prometheus targets file), so a second launch with a live job's id must not start,
// nor clean up what the live job owns. A launch holds an flock on /dev/shm/hds-<job id>.lock while
// it runs and writes there what it created. The kernel drops the lock when its holder dies, however
// it dies: a lock file whose lock is free marks an abandoned job, and whoever takes the lock next
// (a launch with any job id, or `hds-launch clean`) removes what that job left.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace hds::launch {

// The lock file of `job_id`: /dev/shm/hds-<job id>.lock.
std::string job_lock_path(const std::string& job_id);

class JobLock {
 public:
  // Takes `job_id`'s lock, first removing what a dead earlier holder recorded (said on
  // `messages`), then records this process as the owner. Throws LaunchError naming the live
  // owner (pid, host, start time) when another launch holds it; that launch is left untouched.
  static JobLock acquire(const std::string& job_id, std::ostream& messages);

  JobLock(JobLock&& other) noexcept;
  JobLock& operator=(JobLock&&) = delete;
  JobLock(const JobLock&) = delete;
  // Removes the lock file, then releases the lock: the job's own tear-down has run.
  ~JobLock();

  // Records something the job created, for removal should the launcher die: kind is one of
  // "targets_file" and "socket" (files), "socket_directory" and "segment_directory" (folders).
  void record(const std::string& kind, const std::string& path);

 private:
  JobLock(std::string job_id, std::string path, int fd);
  void write_record() const;

  std::string job_id_;
  std::string path_;
  int fd_ = -1;
  std::vector<std::pair<std::string, std::string>> entries_;  // kind, path
};

// Removes what every abandoned job on this machine left (its lock file's records, its rings and
// the lock file itself); says each removal on `messages`. Returns the number of jobs cleaned.
// Lock files of live launches, and of other users that this user may not lock, are skipped.
int clean_abandoned_jobs(std::ostream& messages);

}  // namespace hds::launch

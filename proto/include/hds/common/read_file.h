// Whole-file reading and writing, written once for every component that handles a file in memory
// (configurations, PGM films, Info.txt, plists, checkpoints, evaluation reports). Thread-safe.
#pragma once

#include <stdexcept>
#include <string>

namespace hds::common {

// A file that could not be read. what() is "<path>: <problem>", e.g.
// "runs/x/checkpoint.pbtxt: cannot open: No such file or directory"; callers rethrow it as their
// own error type with the same text.
class FileReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of the file at `path`. A directory is refused (it opens as a stream and reads as
// empty, which would pass for an empty file). Throws FileReadError.
std::string read_whole_file(const std::string& path);

// A file that could not be written; what() is "<path>: write failed: <reason>" (a full disk says
// "No space left on device").
class FileWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `bytes` to `path`, replacing it, and flushes. Throws FileWriteError.
void write_whole_file(const std::string& path, const std::string& bytes);

// Writes `bytes` to "<path>.partial", then renames it over `path`: a reader sees the old file or
// the new one, never a part. Throws FileWriteError (the partial file removed).
void replace_file(const std::string& path, const std::string& bytes);

}  // namespace hds::common

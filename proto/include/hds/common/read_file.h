// Whole-file reading, written once for every component that parses a file in memory
// (configurations, PGM films, Info.txt, plists, checkpoint metadata). Thread-safe.
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

}  // namespace hds::common

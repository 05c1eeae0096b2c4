// Whole-file reading and writing, written once for every component that handles a file in memory
// (configurations, PGM films, Info.txt, plists, checkpoints, evaluation reports). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
// empty, which would pass for an empty file), and so is anything longer than `max_bytes` (read no
// further: /dev/zero given as a configuration ends at once). Throws FileReadError.
std::string read_whole_file(const std::string& path, size_t max_bytes = SIZE_MAX);

// A file that could not be written; what() is "<path>: write failed: <reason>" (a full disk says
// "No space left on device").
class FileWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `bytes` to `path`, replacing it, and flushes. Throws FileWriteError. Only for files
// inside a folder that is itself renamed into place when complete (a checkpoint); every other
// output goes through replace_file.
void write_whole_file(const std::string& path, const std::string& bytes);

// Every output file is written by one of these two: its content goes to a partial file beside it
// ("<path>.partial-<pid>-<n>", unique, so concurrent writers of one path do not mix), which is
// then renamed over `path`: a reader (or a user after a full disk or a crash) sees the old file
// or the whole new one, never a part. A failure removes the partial file.

// Writes `bytes` that way. Throws FileWriteError.
void replace_file(const std::string& path, const std::string& bytes);

// The same for a writer that needs a path (libpng, DCMTK): `write` writes the partial file at the
// path it is given and throws on failure. Throws what `write` throws, or FileWriteError when the
// rename fails.
void replace_file_by(const std::string& path,
                     const std::function<void(const std::string& partial_path)>& write);

// Appends `bytes` (a record: a line of a log or a history) to `path` whole or not at all: when
// the write fails (a full disk) the file is cut back to its former length. Throws
// FileWriteError.
void append_record(const std::string& path, const std::string& bytes);

}  // namespace hds::common

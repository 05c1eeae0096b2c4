// read_whole_file (hds/common/read_file.h): every byte back, and errors that name the file.
#include "hds/common/read_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <string>

#include "hds/test/files.h"

namespace hds::common {
namespace {

TEST(ReadWholeFile, returns_every_byte_including_nul_and_an_empty_file_as_empty) {
  hds::test::TempDir dir;
  const std::string bytes("P5\n\0\xff\r\n", 7);
  hds::test::write_text(dir.file("film.pgm"), bytes);
  EXPECT_EQ(read_whole_file(dir.file("film.pgm")), bytes);
  hds::test::write_text(dir.file("empty"), "");
  EXPECT_EQ(read_whole_file(dir.file("empty")), "");
}

TEST(ReadWholeFile, a_missing_file_or_a_directory_is_an_error_naming_it) {
  hds::test::TempDir dir;
  const std::string missing = dir.file("absent.pbtxt");
  try {
    read_whole_file(missing);
    FAIL() << "read a missing file";
  } catch (const FileReadError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(missing + ": cannot open: ", 0), 0u) << error.what();
  }
  try {
    read_whole_file(dir.path().string());
    FAIL() << "read a directory";
  } catch (const FileReadError& error) {
    EXPECT_NE(std::string(error.what()).find("is a directory"), std::string::npos) << error.what();
  }
}

TEST(WriteWholeFile, writes_every_byte_and_a_failure_names_the_file_and_the_reason) {
  hds::test::TempDir dir;
  const std::string bytes("a\0b\n", 4);
  write_whole_file(dir.file("out.bin"), bytes);
  EXPECT_EQ(read_whole_file(dir.file("out.bin")), bytes);
  const std::string unwritable = dir.file("no-such-folder/out.bin");
  try {
    write_whole_file(unwritable, bytes);
    FAIL() << "wrote into a missing folder";
  } catch (const FileWriteError& error) {
    EXPECT_EQ(std::string(error.what()), unwritable + ": write failed: No such file or directory");
  }
}

// Writes past `bytes` fail with EFBIG while it lives, as a full disk fails them with ENOSPC.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old_;
    small.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &small);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

std::vector<std::string> names_in(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(ReplaceFile, a_failed_write_leaves_the_old_file_whole_and_no_partial_file) {
  hds::test::TempDir dir;
  const std::string path = dir.file("report.json");
  replace_file(path, "old\n");
  const std::string large(8192, 'x');
  {
    FileSizeLimit limit(4096);
    EXPECT_THROW(replace_file(path, large), FileWriteError);
    EXPECT_THROW(replace_file_by(
                     path, [&](const std::string& partial) { write_whole_file(partial, large); }),
                 FileWriteError);
  }
  EXPECT_EQ(read_whole_file(path), "old\n");
  EXPECT_EQ(names_in(dir.path().string()), std::vector<std::string>{"report.json"});
  replace_file(path, large);
  EXPECT_EQ(read_whole_file(path), large);
}

TEST(AppendRecord, a_record_that_does_not_fit_is_cut_away_whole) {
  hds::test::TempDir dir;
  const std::string path = dir.file("history.jsonl");
  const std::string first(4000, 'a');
  append_record(path, first + "\n");
  {
    FileSizeLimit limit(4096);
    try {
      append_record(path, std::string(200, 'b') + "\n");
      ADD_FAILURE() << "appended past the limit";
    } catch (const FileWriteError& error) {
      EXPECT_EQ(std::string(error.what()).rfind(path + ": write failed: ", 0), 0u) << error.what();
    }
  }
  EXPECT_EQ(read_whole_file(path), first + "\n");
  append_record(path, "c\n");
  EXPECT_EQ(read_whole_file(path), first + "\nc\n");
}

}  // namespace
}  // namespace hds::common

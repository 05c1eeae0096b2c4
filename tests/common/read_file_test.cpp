// read_whole_file (hds/common/read_file.h): every byte back, and errors that name the file.
#include "hds/common/read_file.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hds::common

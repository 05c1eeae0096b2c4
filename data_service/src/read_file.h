// Whole-file reading for the text and binary formats parsed in memory (PGM, Info.txt, plist).
#pragma once

#include <string>

namespace hds::data::detail {

// The bytes of the file at `path`. Throws DataError naming the file and the system's reason.
std::string read_whole_file(const std::string& path);

}  // namespace hds::data::detail

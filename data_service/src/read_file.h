// hds::common::read_whole_file for the dataset readers: the same bytes, its failure as a
// DataError (what the readers' bad-sample policy catches), with the same message.
#pragma once

#include <string>

namespace hds::data::detail {

// Throws DataError "<path>: <problem>".
std::string read_data_file(const std::string& path);

}  // namespace hds::data::detail

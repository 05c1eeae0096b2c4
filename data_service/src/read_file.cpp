#include "read_file.h"

#include "hds/common/read_file.h"
#include "hds/data/dataset.h"

namespace hds::data::detail {

std::string read_data_file(const std::string& path) {
  try {
    return hds::common::read_whole_file(path);
  } catch (const hds::common::FileReadError& error) {
    throw DataError(error.what());
  }
}

}  // namespace hds::data::detail

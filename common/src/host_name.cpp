#include "hds/common/host_name.h"

#include <unistd.h>

namespace hds::common {

std::string short_host_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string name(host);
  return name.substr(0, name.find('.'));
}

}  // namespace hds::common

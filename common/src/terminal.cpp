#include "hds/common/terminal.h"

#include <unistd.h>

#include <cstdlib>

namespace hds::common {

bool redraws_in_place(int fd) {
  const char* term = std::getenv("TERM");
  return isatty(fd) == 1 && !(term != nullptr && std::string(term) == "dumb");
}

std::string complete_lines_without_redraws(std::string& pending, const std::string& data) {
  static const std::string kEraseLine = "\033[K";
  std::string lines;
  for (const char c : data) {
    if (c == '\r') {
      pending.clear();  // what follows draws over it
    } else if (c == '\n') {
      if (pending.rfind(kEraseLine, 0) == 0) pending.erase(0, kEraseLine.size());
      lines += pending;
      lines += '\n';
      pending.clear();
    } else {
      pending += c;
    }
  }
  return lines;
}

}  // namespace hds::common

#include "hds/data/crc32.h"

#include <zlib.h>

#include <algorithm>

namespace hds::data {

uint32_t crc32_of(const void* data, size_t bytes, uint32_t crc) {
  const auto* at = static_cast<const Bytef*>(data);
  uLong value = crc;
  constexpr size_t kPiece = size_t{1} << 30;  // zlib takes uInt lengths
  for (size_t done = 0; done < bytes; done += kPiece) {
    value = crc32(value, at + done, static_cast<uInt>(std::min(kPiece, bytes - done)));
  }
  return static_cast<uint32_t>(value);
}

}  // namespace hds::data

// CRC-32 (zlib's, the one of gzip and PNG) of any number of bytes: the checksum of preprocessed
// cache entries and of checkpoint files. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hds::data {

// The CRC-32 of `bytes` bytes at `data`, continuing from `crc`: crc32_of(b, m, crc32_of(a, n))
// is the CRC of a followed by b; 0 starts afresh. Any size (zlib takes 32-bit lengths; this
// feeds it in pieces).
uint32_t crc32_of(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace hds::data

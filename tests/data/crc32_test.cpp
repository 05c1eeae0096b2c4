// crc32_of: the standard CRC-32 check value, and a CRC computed in pieces equals the whole one.
#include "hds/data/crc32.h"

#include <gtest/gtest.h>

#include <string>

namespace hds::data {
namespace {

TEST(Crc32, gives_the_standard_check_value) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32_of(check.data(), check.size()), 0xCBF43926u);
  EXPECT_EQ(crc32_of(check.data(), 0), 0u);
  EXPECT_EQ(crc32_of(nullptr, 0, 0xCBF43926u), 0xCBF43926u);  // nothing more: unchanged
}

TEST(Crc32, continues_across_pieces) {
  std::string bytes(100000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7919 % 251);
  const uint32_t whole = crc32_of(bytes.data(), bytes.size());
  for (size_t split : {size_t{1}, size_t{4096}, size_t{99999}}) {
    EXPECT_EQ(crc32_of(bytes.data() + split, bytes.size() - split, crc32_of(bytes.data(), split)),
              whole)
        << split;
  }
  bytes[5000] ^= 1;
  EXPECT_NE(crc32_of(bytes.data(), bytes.size()), whole);
}

}  // namespace
}  // namespace hds::data

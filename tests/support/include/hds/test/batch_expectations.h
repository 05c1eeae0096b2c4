// A field-by-field comparison of two patch batches: the ring, the server and the trainer's
// client must all deliver PatchSampler's batches.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "hds/transport/patch_batch.h"

namespace hds::test {

inline void expect_same_batch(const hds::transport::PatchBatch& got,
                              const hds::transport::PatchBatch& expected, const std::string& at) {
  EXPECT_EQ(got.count, expected.count) << at;
  EXPECT_EQ(got.rows, expected.rows) << at;
  EXPECT_EQ(got.cols, expected.cols) << at;
  EXPECT_TRUE(got.images == expected.images) << at;
  EXPECT_TRUE(got.masks == expected.masks) << at;
  EXPECT_EQ(got.labels, expected.labels) << at;
  EXPECT_EQ(got.sample_indices, expected.sample_indices) << at;
  EXPECT_EQ(got.crop_rows, expected.crop_rows) << at;
  EXPECT_EQ(got.crop_cols, expected.crop_cols) << at;
}

}  // namespace hds::test

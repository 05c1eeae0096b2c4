// The job-id rule and the ring names derived from it (hds/common/job_id.h): what the
// configuration, the data service and the launcher all rely on.
#include "hds/common/job_id.h"

#include <gtest/gtest.h>

#include <string>

namespace hds::common {
namespace {

TEST(JobId, letters_digits_underscore_and_dash_up_to_64_characters_are_valid) {
  EXPECT_TRUE(is_valid_job_id("a"));
  EXPECT_TRUE(is_valid_job_id("slurm-1234_0"));
  EXPECT_TRUE(is_valid_job_id(std::string(64, 'x')));
}

TEST(JobId, empty_too_long_and_other_characters_are_refused) {
  for (const std::string& id :
       {std::string(), std::string(65, 'x'), std::string("a/b"), std::string("a b"),
        std::string("a.b"), std::string("caf\xc3\xa9"), std::string("a\0b", 3)}) {
    EXPECT_FALSE(is_valid_job_id(id)) << id;
  }
}

TEST(JobId, ring_names_are_the_prefix_and_the_rank) {
  EXPECT_EQ(ring_name("job-1", 0), "/hds-job-1-r0");
  EXPECT_EQ(ring_name("job-1", 17), "/hds-job-1-r17");
  EXPECT_EQ("/" + ring_file_prefix("job-1") + "17", ring_name("job-1", 17));
}

TEST(JobId, a_bad_id_or_a_negative_rank_names_the_problem) {
  try {
    ring_name("a/b", 0);
    FAIL() << "a/b accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("\"a/b\""), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(kJobIdRule), std::string::npos) << error.what();
  }
  EXPECT_THROW(ring_name("job", -1), std::invalid_argument);
}

}  // namespace
}  // namespace hds::common

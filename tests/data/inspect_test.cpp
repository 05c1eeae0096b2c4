// `hds-data-service inspect` on the real mini-MIAS copy: its counts agree with Info.txt read
// independently here, folds keep patients whole, and the second load comes from the cache.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "hds/config/config.h"
#include "hds/data/dataset.h"

namespace {
namespace fs = std::filesystem;

std::string run(const std::string& arguments) {
  const std::string command =
      std::string(HDS_DATA_SERVICE_BINARY) + " " + arguments + " 2>/dev/null";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  pclose(pipe);
  return output;
}

// The value after "name: " on its own line of `text`, or "" when absent.
std::string field(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + ": ", 0) == 0) return line.substr(name.size() + 2);
  }
  return "";
}

struct InfoCounts {
  int films = 0;   // distinct ids
  int masses = 0;  // CIRC/SPIC/MISC rows with x, y, radius
  int films_with_masses = 0;
  int masses_without_coordinates = 0;
};

InfoCounts count_info(const std::string& path) {
  std::ifstream in(path);
  std::set<std::string> ids, with_mass;
  InfoCounts counts;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    if (words.empty() || words[0].size() != 6 || words[0].rfind("mdb", 0) != 0) continue;
    ids.insert(words[0]);
    if (words.size() < 3 || (words[2] != "CIRC" && words[2] != "SPIC" && words[2] != "MISC"))
      continue;
    if (words.size() >= 7) {
      ++counts.masses;
      with_mass.insert(words[0]);
    } else {
      ++counts.masses_without_coordinates;
    }
  }
  counts.films = static_cast<int>(ids.size());
  counts.films_with_masses = static_cast<int>(with_mass.size());
  return counts;
}

class MiniMiasInspect : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(HDS_MINI_MIAS_DIR) / "Info.txt"))
      GTEST_SKIP() << "mini-MIAS not present";
    // Named for the test: ctest runs test cases in parallel processes.
    cache = (fs::temp_directory_path() /
             ("hds-test-inspect-cache-" +
              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())))
                .string();
    fs::remove_all(cache);
    arguments = "inspect --config " + std::string(HDS_SOURCE_DIR) +
                "/deploy/configs/mini-mias.pbtxt --set data.root=" + HDS_MINI_MIAS_DIR +
                " --set data.cache_dir=" + cache;
  }
  std::string cache, arguments;
};

TEST_F(MiniMiasInspect, counts_agree_with_info_txt_and_the_cache_serves_the_second_run) {
  const InfoCounts info = count_info(std::string(HDS_MINI_MIAS_DIR) + "/Info.txt");
  const std::string first = run(arguments);
  // Films whose only mass has no coordinates are left out (their label would be wrong).
  EXPECT_EQ(field(first, "films"), std::to_string(info.films - info.masses_without_coordinates))
      << first;
  EXPECT_EQ(field(first, "skipped_masses"), std::to_string(info.masses_without_coordinates));
  EXPECT_EQ(field(first, "masses"), std::to_string(info.masses));
  EXPECT_EQ(field(first, "films_with_masses"), std::to_string(info.films_with_masses));
  EXPECT_EQ(field(first, "patients"), std::to_string((info.films + 1) / 2));  // film pairs
  EXPECT_NE(field(first, "cache").find("0 hits"), std::string::npos) << first;

  const std::string second = run(arguments);
  EXPECT_NE(field(second, "cache").find(field(first, "films") + " hits, 0 misses"),
            std::string::npos)
      << second;
  EXPECT_EQ(field(second, "mean"), field(first, "mean"));
  EXPECT_EQ(field(second, "split_file"), field(first, "split_file"));
  EXPECT_EQ(field(second, "train"), field(first, "train"));
}

TEST_F(MiniMiasInspect, folds_keep_each_patient_in_one_split_and_rotate) {
  std::vector<std::string> overrides = {"data.source=mini-mias",
                                        std::string("data.root=") + HDS_MINI_MIAS_DIR,
                                        "data.cache_dir=" + cache};
  std::map<std::string, std::set<std::string>> test_patients;  // rotation -> patients tested
  for (int rotation : {0, 1}) {
    overrides.push_back("data.fold=" + std::to_string(rotation));
    const auto config = hds::config::parse_config("", "<test>", overrides);
    overrides.pop_back();
    const auto dataset = hds::data::load_dataset(config.data());
    std::map<std::string, std::string> split_of_patient;
    for (const auto& [name, split] :
         {std::pair{"train", &dataset.train}, {"val", &dataset.val}, {"test", &dataset.test}}) {
      for (const auto& film : *split) {
        const auto [known, added] = split_of_patient.emplace(film.patient, name);
        EXPECT_TRUE(added || known->second == name)
            << film.patient << " in " << known->second << " and " << name;
        if (std::string(name) == "test")
          test_patients[std::to_string(rotation)].insert(film.patient);
      }
    }
    EXPECT_GT(dataset.val.size(), 40u);
    EXPECT_GT(dataset.test.size(), 40u);
  }
  // Rotation 1 tests other patients than rotation 0.
  for (const auto& patient : test_patients["1"])
    EXPECT_EQ(test_patients["0"].count(patient), 0u) << patient;
}

}  // namespace

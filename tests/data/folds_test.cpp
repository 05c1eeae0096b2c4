// Patient-level folds: no patient straddles folds, strata are balanced, the rotation is 3/1/1,
// and the split file round-trips and rejects damage with file and line.
#include "hds/data/folds.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "hds/data/dataset.h"

namespace hds::data {
namespace {

// 40 patients of two films each; every third patient has a mass.
std::vector<FilmKey> paired_films() {
  std::vector<FilmKey> films;
  for (int p = 0; p < 40; ++p) {
    for (int side = 0; side < 2; ++side) {
      films.push_back({"film-" + std::to_string(2 * p + side), "patient-" + std::to_string(p),
                       p % 3 == 0 && side == 0});
    }
  }
  return films;
}

TEST(Folds, every_patient_stays_in_one_fold_and_folds_are_balanced) {
  const auto films = paired_films();
  const auto assignment = assign_folds(films, 5, 42);
  std::map<std::string, std::set<int>> patient_folds;
  std::map<int, int> films_per_fold, mass_patients_per_fold;
  for (const auto& film : films) {
    const int fold = assignment.film_fold.at(film.film);
    patient_folds[film.patient].insert(fold);
    ++films_per_fold[fold];
    if (film.has_mass) ++mass_patients_per_fold[fold];
  }
  for (const auto& [patient, folds] : patient_folds) EXPECT_EQ(folds.size(), 1u) << patient;
  for (int fold = 0; fold < 5; ++fold) {
    EXPECT_EQ(films_per_fold[fold], 16) << fold;  // 8 patients x 2 films
    // 14 patients with a mass over 5 folds: 2 or 3 each.
    EXPECT_GE(mass_patients_per_fold[fold], 2) << fold;
    EXPECT_LE(mass_patients_per_fold[fold], 3) << fold;
  }
}

TEST(Folds, the_seed_decides_the_assignment) {
  const auto films = paired_films();
  EXPECT_EQ(assign_folds(films, 5, 1).film_fold, assign_folds(films, 5, 1).film_fold);
  EXPECT_NE(assign_folds(films, 5, 1).film_fold, assign_folds(films, 5, 2).film_fold);
}

TEST(Folds, each_rotation_trains_on_three_validates_on_one_tests_on_one) {
  for (int rotation = 0; rotation < 5; ++rotation) {
    std::map<SplitRole, int> count;
    for (int fold = 0; fold < 5; ++fold) ++count[fold_role(fold, rotation, 5)];
    EXPECT_EQ(count[SplitRole::kTrain], 3);
    EXPECT_EQ(count[SplitRole::kValidation], 1);
    EXPECT_EQ(count[SplitRole::kTest], 1);
    EXPECT_EQ(fold_role(rotation, rotation, 5), SplitRole::kTest);
    EXPECT_EQ(fold_role((rotation + 1) % 5, rotation, 5), SplitRole::kValidation);
  }
  // Over the five rotations every fold is tested exactly once.
  std::set<int> tested;
  for (int rotation = 0; rotation < 5; ++rotation) {
    for (int fold = 0; fold < 5; ++fold) {
      if (fold_role(fold, rotation, 5) == SplitRole::kTest) tested.insert(fold);
    }
  }
  EXPECT_EQ(tested.size(), 5u);
}

TEST(Folds, too_few_patients_or_a_repeated_film_is_an_error) {
  std::vector<FilmKey> three = {{"a", "p1", false}, {"b", "p2", true}, {"c", "p3", false}};
  EXPECT_THROW(assign_folds(three, 5, 1), DataError);
  three.push_back({"a", "p4", false});
  EXPECT_THROW(assign_folds(three, 3, 1), DataError);
}

class SplitFileTest : public ::testing::Test {
 protected:
  // Named for the test: ctest runs test cases in parallel processes.
  std::string path =
      (std::filesystem::temp_directory_path() /
       ("hds-test-split-" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".txt"))
          .string();
  void write(const std::string& text) { std::ofstream(path) << text; }
  std::string error_of() {
    try {
      read_split_file(path);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(SplitFileTest, round_trips) {
  const auto films = paired_films();
  const auto assignment = assign_folds(films, 5, 3);
  write_split_file(path, films, assignment);
  const auto read = read_split_file(path);
  EXPECT_EQ(read.folds, 5);
  EXPECT_EQ(read.film_fold, assignment.film_fold);
}

TEST_F(SplitFileTest, damage_is_reported_with_file_and_line) {
  write("# hds split file v1\nfolds 5\nf1 p1 0\nf2 p1 3\n");
  EXPECT_NE(error_of().find(path + ":4: patient p1 is in folds 0 and 3"), std::string::npos)
      << error_of();
  write("# hds split file v1\nfolds 5\nf1 p1 7\n");
  EXPECT_NE(error_of().find(path + ":3: fold 7 outside 0..4"), std::string::npos) << error_of();
  write("not a split file\n");
  EXPECT_NE(error_of().find(path + ":1:"), std::string::npos) << error_of();
  write("# hds split file v1\nfolds 5\nf1 p1\n");
  EXPECT_NE(error_of().find(path + ":3: expected"), std::string::npos) << error_of();
}

}  // namespace
}  // namespace hds::data

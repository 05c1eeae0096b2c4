// Study summaries from hand-made film findings: grouping by study, breasts in reading order,
// each breast's highest probability and its view, missing screening views, lesions carried with
// their film, and the Markdown a person reads saying the same.
#include "hds/trainer/study_summary.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hds::trainer {
namespace {

FilmFinding film(const std::string& name, const std::string& study, const std::string& side,
                 const std::string& view, double probability) {
  FilmFinding finding;
  finding.name = name;
  finding.input = "/films/" + name + ".dcm";
  finding.study_uid = study;
  finding.patient_id = "p-" + study;
  finding.study_date = "20260105";
  finding.accession_number = "A" + study;
  finding.laterality = side;
  finding.view = view;
  finding.mass_probability = probability;
  return finding;
}

TEST(StudySummary, groups_by_study_and_breast_and_names_the_view_of_each_breasts_highest_film) {
  std::vector<FilmFinding> films = {
      film("l-cc", "1.2", "L", "CC", 0.30), film("other", "9.9", "R", "CC", 0.10),
      film("r-cc", "1.2", "R", "CC", 0.20), film("l-mlo", "1.2", "L", "MLO", 0.75),
      film("r-mlo", "1.2", "R", "MLO", 0.40)};
  films[3].lesions.push_back({120.5, 80.25, 300, 2.94, 2.5, 0.9});
  films[3].lesions.push_back({10, 20, 4, -1, -1, 0.6});
  const std::vector<StudySummary> studies = summarize_studies(films, 0.5, "run step 7");
  ASSERT_EQ(studies.size(), 2u);
  EXPECT_EQ(studies[0].study_uid, "1.2");  // first seen first
  EXPECT_EQ(studies[1].study_uid, "9.9");
  const auto study = nlohmann::json::parse(studies[0].json);
  EXPECT_EQ(study["patient_id"], "p-1.2");
  EXPECT_EQ(study["model"], "run step 7");
  ASSERT_EQ(study["breasts"].size(), 2u);
  const auto& right = study["breasts"][0];  // right first, as radiologists read
  const auto& left = study["breasts"][1];
  EXPECT_EQ(right["laterality"], "R");
  EXPECT_DOUBLE_EQ(right["highest_mass_probability"].get<double>(), 0.40);
  EXPECT_EQ(right["view"], "MLO");
  EXPECT_EQ(right["film"], "r-mlo");
  EXPECT_FALSE(right["positive"].get<bool>());
  EXPECT_TRUE(right["missing_views"].empty());
  EXPECT_EQ(left["laterality"], "L");
  EXPECT_DOUBLE_EQ(left["highest_mass_probability"].get<double>(), 0.75);
  EXPECT_EQ(left["view"], "MLO");
  EXPECT_TRUE(left["positive"].get<bool>());
  ASSERT_EQ(left["lesions"].size(), 2u);
  EXPECT_EQ(left["lesions"][0]["film"], "l-mlo");
  EXPECT_EQ(left["lesions"][0]["lesion"], 1);
  EXPECT_DOUBLE_EQ(left["lesions"][0]["area_mm2"].get<double>(), 2.94);
  EXPECT_TRUE(left["lesions"][1]["area_mm2"].is_null());  // no spacing: no mm
  EXPECT_TRUE(left["lesions"][1]["longest_diameter_mm"].is_null());
  EXPECT_EQ(left["lesions"][1]["area_pixels"], 4);
  EXPECT_TRUE(right["lesions"].empty());

  const std::string& md = studies[0].markdown;
  EXPECT_NE(md.find("# Study 1.2"), std::string::npos) << md;
  EXPECT_NE(md.find("study date 2026-01-05"), std::string::npos) << md;
  EXPECT_NE(md.find("| Right | 0.400 | MLO (r-mlo) | negative | CC, MLO | — |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| Left | 0.750 | MLO (l-mlo) | **positive** | CC, MLO | — |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| L | MLO | l-mlo | 1 | 120.5, 80.2 | 2.9 mm² | 2.5 mm | 0.900 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| L | MLO | l-mlo | 2 | 10.0, 20.0 | 4 px | — | 0.600 |"), std::string::npos)
      << md;
}

TEST(StudySummary, missing_views_and_films_of_no_known_side_are_said) {
  const std::vector<FilmFinding> films = {film("l-cc", "3", "L", "CC", 0.6),
                                          film("b", "3", "B", "CC", 0.2)};
  const auto study = nlohmann::json::parse(summarize_studies(films, 0.5, "m")[0].json);
  ASSERT_EQ(study["breasts"].size(), 2u);
  EXPECT_EQ(study["breasts"][0]["laterality"], "L");
  EXPECT_EQ(study["breasts"][0]["missing_views"], nlohmann::json({"MLO"}));
  EXPECT_TRUE(study["breasts"][1]["laterality"].is_null());
  const std::string md = summarize_studies(films, 0.5, "m")[0].markdown;
  EXPECT_NE(md.find("| Left | 0.600 | CC (l-cc) | **positive** | CC | MLO |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| Unknown side |"), std::string::npos) << md;
  EXPECT_NE(md.find("None found."), std::string::npos) << md;
}

}  // namespace
}  // namespace hds::trainer

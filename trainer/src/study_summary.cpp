#include "hds/trainer/study_summary.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hds/common/text_format.h"

namespace hds::trainer {

namespace {

// The views a screening mammogram takes of each breast.
const std::vector<std::string> kScreeningViews = {"CC", "MLO"};

// Breasts in the order radiologists read them: right, left, then films of no known side.
const std::vector<std::pair<std::string, std::string>> kBreasts = {
    {"R", "Right"}, {"L", "Left"}, {"", "Unknown side"}};

std::string breast_of(const FilmFinding& film) {
  return film.laterality == "L" || film.laterality == "R" ? film.laterality : "";
}

nlohmann::json millimetres(double value) {
  return value < 0 ? nlohmann::json() : nlohmann::json(value);
}

// "20260105" as "2026-01-05"; anything else as it is.
std::string date_text(const std::string& date) {
  if (date.size() != 8) return date;
  return date.substr(0, 4) + "-" + date.substr(4, 2) + "-" + date.substr(6, 2);
}

// A table cell: no line breaks or pipes from file names.
std::string cell(std::string text) {
  for (char& c : text)
    if (c == '|' || c == '\n' || c == '\r') c = ' ';
  return text.empty() ? "—" : text;
}

nlohmann::json breast_json(const std::string& side, const std::vector<const FilmFinding*>& films,
                           double threshold) {
  const FilmFinding* highest =
      *std::max_element(films.begin(), films.end(), [](const FilmFinding* a, const FilmFinding* b) {
        return a->mass_probability < b->mass_probability;
      });
  std::vector<std::string> views;
  for (const FilmFinding* film : films)
    if (std::find(views.begin(), views.end(), film->view) == views.end())
      views.push_back(film->view);
  nlohmann::json missing = nlohmann::json::array();
  for (const std::string& view : kScreeningViews)
    if (std::find(views.begin(), views.end(), view) == views.end()) missing.push_back(view);
  nlohmann::json breast{{"laterality", side.empty() ? nlohmann::json() : nlohmann::json(side)},
                        {"highest_mass_probability", highest->mass_probability},
                        {"view", highest->view},
                        {"film", highest->name},
                        {"positive", highest->mass_probability > threshold},
                        {"views", views},
                        {"missing_views", missing},
                        {"films", nlohmann::json::array()},
                        {"lesions", nlohmann::json::array()}};
  for (const FilmFinding* film : films) {
    breast["films"].push_back({{"name", film->name},
                               {"input", film->input},
                               {"view", film->view},
                               {"mass_probability", film->mass_probability}});
    for (size_t k = 0; k < film->lesions.size(); ++k) {
      const FilmFinding::Lesion& lesion = film->lesions[k];
      breast["lesions"].push_back({{"film", film->name},
                                   {"view", film->view},
                                   {"lesion", k + 1},
                                   {"centre", {lesion.centre_x, lesion.centre_y}},
                                   {"area_pixels", lesion.area_pixels},
                                   {"area_mm2", millimetres(lesion.area_mm2)},
                                   {"longest_diameter_mm", millimetres(lesion.longest_diameter_mm)},
                                   {"peak_probability", lesion.peak_probability}});
    }
  }
  return breast;
}

std::string study_markdown(const nlohmann::json& study) {
  std::ostringstream md;
  md << "# Study " << study["study_uid"].get<std::string>() << "\n\n";
  md << "Patient " << cell(study["patient_id"]) << " · study date "
     << cell(date_text(study["study_date"])) << " · accession " << cell(study["accession_number"])
     << "  \nModel " << study["model"].get<std::string>()
     << "; a breast is called positive when its highest mass probability exceeds "
     << study["threshold"].get<double>() << ".\n\n";
  md << "| Breast | Highest mass probability | Seen on | Call | Views | Missing views |\n"
     << "|---|---|---|---|---|---|\n";
  for (const auto& breast : study["breasts"]) {
    std::string name;
    for (const auto& [side, label] : kBreasts)
      if (breast["laterality"].is_null() ? side.empty() : breast["laterality"] == side)
        name = label;
    std::string views, missing;
    for (const auto& view : breast["views"])
      views += (views.empty() ? "" : ", ") + cell(view.get<std::string>());
    for (const auto& view : breast["missing_views"])
      missing += (missing.empty() ? "" : ", ") + view.get<std::string>();
    md << "| " << name << " | "
       << hds::common::fixed_decimals(breast["highest_mass_probability"], 3) << " | "
       << cell(breast["view"]) << " (" << cell(breast["film"]) << ") | "
       << (breast["positive"].get<bool>() ? "**positive**" : "negative") << " | " << views << " | "
       << cell(missing) << " |\n";
  }
  md << "\n## Films\n\n| Breast | View | Film | Mass probability | Lesions "
        "|\n|---|---|---|---|---|\n";
  for (const auto& breast : study["breasts"]) {
    for (const auto& film : breast["films"]) {
      size_t lesions = 0;
      for (const auto& lesion : breast["lesions"]) lesions += lesion["film"] == film["name"];
      md << "| " << cell(breast["laterality"].is_null() ? "" : breast["laterality"]) << " | "
         << cell(film["view"]) << " | " << cell(film["name"]) << " | "
         << hds::common::fixed_decimals(film["mass_probability"], 3) << " | " << lesions << " |\n";
    }
  }
  md << "\n## Lesions\n\n";
  bool any = false;
  for (const auto& breast : study["breasts"]) any = any || !breast["lesions"].empty();
  if (!any) {
    md << "None found.\n";
    return md.str();
  }
  md << "Centres in film pixels (x across, y down); sizes in mm where the film gives its "
        "spacing.\n\n"
     << "| Breast | View | Film | Lesion | Centre (x, y) | Area | Longest diameter | Peak "
        "probability |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& breast : study["breasts"]) {
    for (const auto& lesion : breast["lesions"]) {
      const std::string area = lesion["area_mm2"].is_null()
                                   ? std::to_string(lesion["area_pixels"].get<int64_t>()) + " px"
                                   : hds::common::fixed_decimals(lesion["area_mm2"], 1) + " mm²";
      const std::string diameter =
          lesion["longest_diameter_mm"].is_null()
              ? "—"
              : hds::common::fixed_decimals(lesion["longest_diameter_mm"], 1) + " mm";
      md << "| " << cell(breast["laterality"].is_null() ? "" : breast["laterality"]) << " | "
         << cell(lesion["view"]) << " | " << cell(lesion["film"]) << " | "
         << lesion["lesion"].get<int>() << " | "
         << hds::common::fixed_decimals(lesion["centre"][0], 1) << ", "
         << hds::common::fixed_decimals(lesion["centre"][1], 1) << " | " << area << " | "
         << diameter << " | " << hds::common::fixed_decimals(lesion["peak_probability"], 3)
         << " |\n";
    }
  }
  return md.str();
}

}  // namespace

std::vector<StudySummary> summarize_studies(const std::vector<FilmFinding>& films, double threshold,
                                            const std::string& model) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const FilmFinding*>> by_study;
  for (const FilmFinding& film : films) {
    if (by_study.count(film.study_uid) == 0) order.push_back(film.study_uid);
    by_study[film.study_uid].push_back(&film);
  }
  std::vector<StudySummary> summaries;
  for (const std::string& uid : order) {
    const std::vector<const FilmFinding*>& study_films = by_study[uid];
    const FilmFinding& first = *study_films.front();
    nlohmann::json study{{"study_uid", uid},
                         {"patient_id", first.patient_id},
                         {"study_date", first.study_date},
                         {"accession_number", first.accession_number},
                         {"model", model},
                         {"threshold", threshold},
                         {"breasts", nlohmann::json::array()}};
    for (const auto& [side, label] : kBreasts) {
      std::vector<const FilmFinding*> breast;
      for (const FilmFinding* film : study_films)
        if (breast_of(*film) == side) breast.push_back(film);
      if (!breast.empty()) study["breasts"].push_back(breast_json(side, breast, threshold));
    }
    summaries.push_back({uid, study.dump(2) + "\n", study_markdown(study)});
  }
  return summaries;
}

}  // namespace hds::trainer

// `hds-trainer infer` (commands.h): a checkpoint's model (inference.h) on mammogram files and
// folders: read, preprocess, predict, back to the film's geometry, lesions, and the outputs (PNGs,
// JSON, and for DICOM films a Segmentation and a structured report); then a summary per study
// (study_summary.h) and a record of the run (what was read, what failed, what was skipped).
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "commands.h"
#include "hds/common/exit_codes.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/dicom.h"
#include "hds/data/film_file.h"
#include "hds/data/png_io.h"
#include "hds/data/preprocess.h"
#include "hds/scoring/scoring.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/study_summary.h"
#include "inference.h"

namespace hds::trainer {

using hds::scoring::Component;
using hds::scoring::Components;

namespace {

// The name DICOM outputs give the algorithm.
constexpr const char* kAlgorithmName = "HDS U-ResNet";

// What infer writes for a film named `name`: <name><suffix> under --out.
constexpr const char* kMaskSuffix = ".mask.png";
constexpr const char* kOverlaySuffix = ".overlay.png";
constexpr const char* kReportSuffix = ".json";
constexpr const char* kSegmentationSuffix = ".seg.dcm";     // DICOM films only
constexpr const char* kStructuredReportSuffix = ".sr.dcm";  // DICOM films only
constexpr std::array<const char*, 5> kInferSuffixes = {
    kMaskSuffix, kOverlaySuffix, kReportSuffix, kSegmentationSuffix, kStructuredReportSuffix};

// What the run records beside the films' outputs: <dir>/<kRunRecord>.json and
// <dir>/<kStudiesFolder>/<Study Instance UID>.{json,md}.
constexpr const char* kRunRecord = "infer-run";
constexpr const char* kStudiesFolder = "studies";

// A study's summary files are named by its UID (digits and dots); any other character of a
// malformed one becomes '_' so that it cannot leave the folder.
std::string study_file_name(std::string uid) {
  for (char& c : uid)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') c = '_';
  return uid == "." || uid == ".." ? "_" : uid;
}

// A film to read and the stem its outputs' name starts from.
struct InferInput {
  std::string path;
  std::string stem;
};

// The films among the command's arguments, and the files of its folders left alone with why.
struct GatheredInputs {
  std::vector<InferInput> films;
  std::vector<std::pair<std::string, std::string>> skipped;  // (file, reason)
};

// A file named on the command line is read as a film whatever it is (a failure is counted); a
// folder is walked (sorted, recursively, leaving out `out_dir` should it lie inside) and each file
// classified by content (classify_film_candidate): its films are read, its other files skipped.
// A film found in a folder is named by its path below the folder, '/' made '_' (series folders
// often repeat file names).
GatheredInputs gather_inputs(const std::vector<std::string>& arguments,
                             const std::filesystem::path& out_dir) {
  namespace fs = std::filesystem;
  GatheredInputs gathered;
  const fs::path out = fs::weakly_canonical(out_dir);
  for (const std::string& argument : arguments) {
    std::error_code error;
    if (!fs::is_directory(argument, error)) {
      gathered.films.push_back({argument, fs::path(argument).stem().string()});
      continue;
    }
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(
             argument, fs::directory_options::skip_permission_denied, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (it->is_directory(error) && fs::weakly_canonical(it->path()) == out) {
        it.disable_recursion_pending();
      } else if (it->is_regular_file(error)) {
        files.push_back(it->path());
      }
    }
    if (error) {
      throw hds::data::DataError(argument + ": cannot list the folder: " + error.message());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const hds::data::FilmCandidate candidate = hds::data::classify_film_candidate(file.string());
      if (!candidate.is_film) {
        gathered.skipped.emplace_back(file.string(), candidate.skip_reason);
        continue;
      }
      std::string stem = file.lexically_relative(argument).replace_extension().string();
      std::replace(stem.begin(), stem.end(), '/', '_');
      gathered.films.push_back({file.string(), stem});
    }
  }
  return gathered;
}

// The names of the films' outputs under `dir`: each stem, numbered (-2, -3, ...) when an earlier
// film or the run record took it, or when one of its outputs would be an input file: infer never
// writes over an input (e.g. `infer --out d d/a.png d/a.mask.png`: a.png's outputs become d/a-2.*).
std::vector<std::string> infer_output_names(const std::vector<InferInput>& inputs,
                                            const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::set<std::string> input_files;
  for (const InferInput& input : inputs)
    input_files.insert(fs::weakly_canonical(input.path).string());
  std::set<std::string> taken = {kRunRecord};
  const auto usable = [&](const std::string& name) {
    if (taken.count(name) != 0) return false;
    return std::none_of(kInferSuffixes.begin(), kInferSuffixes.end(), [&](const char* suffix) {
      return input_files.count(fs::weakly_canonical(dir / (name + suffix)).string()) != 0;
    });
  };
  std::vector<std::string> names;
  for (const InferInput& input : inputs) {
    std::string name = input.stem;
    for (int n = 2; !usable(name); ++n) name = input.stem + "-" + std::to_string(n);
    taken.insert(name);
    names.push_back(name);
  }
  return names;
}

// Each lesion (8-connected component) of `mask` measured on the rows x cols film: bounding box,
// area, centre, longest diameter (mm with the film's spacing, else pixels) and the highest
// probability of `map` inside it.
hds::data::MassFindings measure_lesions(const std::vector<float>& map,
                                        const std::vector<uint8_t>& mask, int rows, int cols,
                                        const hds::data::DicomFilm& dicom) {
  hds::data::MassFindings findings;
  if (dicom.row_spacing_mm > 0 && dicom.col_spacing_mm > 0) {
    findings.row_spacing_mm = dicom.row_spacing_mm;
    findings.col_spacing_mm = dicom.col_spacing_mm;
  }
  const bool spaced = findings.spaced();
  const Components lesions = hds::scoring::connected_components(mask.data(), rows, cols);
  std::vector<double> peaks(lesions.components.size(), 0);
  for (size_t i = 0; i < map.size(); ++i) {
    if (lesions.labels[i] > 0) {
      double& peak = peaks[static_cast<size_t>(lesions.labels[i] - 1)];
      peak = std::max(peak, static_cast<double>(map[i]));
    }
  }
  const std::vector<hds::scoring::ComponentShape> shapes =
      hds::scoring::component_shapes(lesions, rows, cols, spaced ? findings.col_spacing_mm : 1,
                                     spaced ? findings.row_spacing_mm : 1);
  for (size_t k = 0; k < lesions.components.size(); ++k) {
    const Component& c = lesions.components[k];
    const hds::scoring::ComponentShape& shape = shapes[k];
    findings.lesions.push_back({c.top, c.left, c.bottom, c.right, c.pixels, shape.centre_x,
                                shape.centre_y, shape.x0, shape.y0, shape.x1, shape.y1,
                                shape.longest_extent, peaks[k]});
  }
  return findings;
}

// The film's JSON report (docs/design.md §3, `infer`).
nlohmann::json film_report(const std::string& path, const hds::data::FilmFile& file,
                           const hds::data::MassFindings& findings) {
  const hds::data::DicomFilm& dicom = file.dicom;
  const bool spaced = findings.spaced();
  nlohmann::json report{{"input", path},
                        {"kind", file.kind},
                        {"rows", file.image.rows},
                        {"cols", file.image.cols},
                        {"mass_probability", findings.mass_probability},
                        {"positive", findings.mass_probability > hds::scoring::kOperatingThreshold},
                        {"threshold", hds::scoring::kOperatingThreshold},
                        {"model", findings.algorithm_version},
                        {"pixel_spacing_mm", nullptr},
                        {"lesions", nlohmann::json::array()}};
  if (spaced) {
    report["pixel_spacing_mm"] = {findings.row_spacing_mm, findings.col_spacing_mm};
    report["pixel_spacing_tag"] = dicom.spacing_tag;
  }
  if (file.kind == "dicom") {
    const auto or_null = [](const std::string& text) {
      return text.empty() ? nlohmann::json() : nlohmann::json(text);
    };
    report["laterality"] = or_null(dicom.laterality);
    report["view"] = or_null(dicom.view);
    report["dicom_pipeline"] = dicom.pipeline;
    report["study"] = {{"study_uid", dicom.study_uid},
                       {"patient_id", dicom.patient_id},
                       {"study_date", dicom.study_date},
                       {"accession_number", dicom.accession_number}};
  }
  for (const hds::data::MassFindings::Lesion& lesion : findings.lesions) {
    const auto mm = [&](double value) { return spaced ? nlohmann::json(value) : nlohmann::json(); };
    report["lesions"].push_back(
        {{"top", lesion.top},
         {"left", lesion.left},
         {"bottom", lesion.bottom},
         {"right", lesion.right},
         {"centre", {lesion.centre_x, lesion.centre_y}},
         {"area_pixels", lesion.area_pixels},
         {"area_mm2", mm(findings.area(lesion))},
         {"longest_diameter_ends",
          {lesion.diameter_x0, lesion.diameter_y0, lesion.diameter_x1, lesion.diameter_y1}},
         {"longest_diameter_mm", mm(lesion.longest_diameter)},
         {"peak_probability", lesion.peak_probability}});
  }
  return report;
}

// What a study summary needs of a film.
FilmFinding study_finding(const std::string& name, const std::string& path,
                          const hds::data::DicomFilm& dicom,
                          const hds::data::MassFindings& findings) {
  FilmFinding finding{name,
                      path,
                      dicom.study_uid,
                      dicom.patient_id,
                      dicom.study_date,
                      dicom.accession_number,
                      dicom.laterality,
                      dicom.view,
                      findings.mass_probability,
                      {}};
  const bool spaced = findings.spaced();
  for (const hds::data::MassFindings::Lesion& lesion : findings.lesions) {
    finding.lesions.push_back({lesion.centre_x, lesion.centre_y, lesion.area_pixels,
                               spaced ? findings.area(lesion) : -1,
                               spaced ? lesion.longest_diameter : -1, lesion.peak_probability});
  }
  return finding;
}

// One film through the model; writes its outputs under `dir` named `name` (for DICOM films also
// a DICOM Segmentation and structured report). Returns what a study summary needs of it.
FilmFinding infer_film(const std::string& path, const std::string& name, TrainedModel& trained,
                       const std::filesystem::path& dir, std::ostream& out) {
  const hds::config::Config& config = trained.config();
  const hds::data::FilmFile file = hds::data::read_film_file(path, config.data().max_film_pixels());
  const hds::data::GreyImage& image = file.image;
  const hds::data::PreprocessOptions options = hds::data::preprocess_options_for(config.data());
  std::vector<hds::data::Film> films = {hds::data::preprocess_film(
      image, std::vector<uint8_t>(image.pixels.size(), 0), options, name, file.dicom.patient_id)};
  hds::data::normalise_films(films, trained.normalisation()->mean, trained.normalisation()->std);
  const HeadPrediction prediction = trained.predict(films[0]).back();
  const std::vector<float> map = hds::data::restore_film_geometry(
      prediction.foreground, options.rows, options.cols, hds::data::kept_columns(image, options),
      image.rows, image.cols);
  const std::vector<uint8_t> mask = operating_mask(map);

  hds::data::MassFindings findings = measure_lesions(map, mask, image.rows, image.cols, file.dicom);
  findings.algorithm = kAlgorithmName;
  findings.algorithm_version = trained.version();
  findings.device_uid = trained.device_uid();
  findings.mass_probability = prediction.mass_probability;
  nlohmann::json report = film_report(path, file, findings);

  const auto output = [&](const char* suffix) { return (dir / (name + suffix)).string(); };
  std::string outputs = output(kMaskSuffix) + ", " + output(kOverlaySuffix) + ", ";
  if (file.kind == "dicom") {
    // For PACS viewers: the mask as a DICOM Segmentation referencing the film, and the findings
    // as a structured report referencing both.
    const std::string seg = output(kSegmentationSuffix);
    const hds::data::DicomInstance written =
        hds::data::write_mass_segmentation(path, mask, image.rows, image.cols, kAlgorithmName, seg);
    const std::string sr = output(kStructuredReportSuffix);
    hds::data::write_mass_report(path, written, findings, sr);
    report["segmentation"] = seg;
    report["structured_report"] = sr;
    outputs += seg + ", " + sr + ", ";
  }
  std::vector<uint8_t> grey(map.size()), shown(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    shown[i] = mask[i] * 255;
    grey[i] = static_cast<uint8_t>(std::lround(255.0 * image.pixels[i] / image.max_level));
  }
  hds::data::write_grey_png(output(kMaskSuffix), image.rows, image.cols, shown);
  write_overlay_png(output(kOverlaySuffix), image.rows, image.cols, grey, nullptr, mask.data());
  hds::common::replace_file(output(kReportSuffix), report.dump(2) + "\n");
  out << path << ": mass probability " << prediction.mass_probability << ", "
      << findings.lesions.size() << " lesion(s); " << outputs << output(kReportSuffix) << "\n";
  return study_finding(name, path, file.dicom, findings);
}

}  // namespace

int run_infer_command(const InferCommand& command, std::ostream& out, std::ostream& errors) {
  TrainedModel trained(command.checkpoint, {});
  if (!trained.normalisation()) {
    throw CheckpointError(command.checkpoint +
                          ": holds no training normalisation (written before checkpoints "
                          "recorded it); continue the run for a step to write a new checkpoint");
  }
  const std::filesystem::path dir(command.out);
  const GatheredInputs inputs = gather_inputs(command.inputs, dir);
  nlohmann::json record{{"model", trained.version()},
                        {"device_uid", trained.device_uid()},
                        {"threshold", hds::scoring::kOperatingThreshold},
                        {"films", nlohmann::json::array()},
                        {"failed", nlohmann::json::array()},
                        {"skipped", nlohmann::json::array()},
                        {"studies", nlohmann::json::array()}};
  for (const auto& [path, reason] : inputs.skipped) {
    out << "infer: skipped " << path << ": " << reason << "\n";
    record["skipped"].push_back({{"input", path}, {"reason", reason}});
  }
  if (inputs.films.empty()) {
    throw hds::data::DataError("infer: no films among the inputs (" +
                               std::to_string(inputs.skipped.size()) + " file(s) skipped)");
  }
  std::filesystem::create_directories(dir);
  const std::vector<std::string> names = infer_output_names(inputs.films, dir);
  std::vector<FilmFinding> dicom_films;
  int failed = 0;
  for (size_t i = 0; i < inputs.films.size(); ++i) {
    const std::string& path = inputs.films[i].path;
    try {
      FilmFinding finding = infer_film(path, names[i], trained, dir, out);
      record["films"].push_back(
          {{"input", path}, {"name", names[i]}, {"study_uid", finding.study_uid}});
      if (!finding.study_uid.empty()) dicom_films.push_back(std::move(finding));
    } catch (const std::exception& error) {
      ++failed;
      errors << "infer: " << path << ": failed: " << error.what() << "\n";
      record["failed"].push_back({{"input", path}, {"error", error.what()}});
    }
  }
  const std::vector<StudySummary> studies =
      summarize_studies(dicom_films, hds::scoring::kOperatingThreshold, trained.version());
  if (!studies.empty()) std::filesystem::create_directories(dir / kStudiesFolder);
  for (const StudySummary& study : studies) {
    const std::filesystem::path base = dir / kStudiesFolder / study_file_name(study.study_uid);
    hds::common::replace_file(base.string() + ".json", study.json);
    hds::common::replace_file(base.string() + ".md", study.markdown);
    record["studies"].push_back({{"study_uid", study.study_uid},
                                 {"json", base.string() + ".json"},
                                 {"markdown", base.string() + ".md"}});
  }
  const std::string record_path = (dir / (std::string(kRunRecord) + ".json")).string();
  hds::common::replace_file(record_path, record.dump(2) + "\n");
  const size_t films = inputs.films.size();
  out << "infer: " << films - failed << " of " << films << " films done"
      << (failed > 0 ? ", " + std::to_string(failed) + " failed" : "")
      << (inputs.skipped.empty() ? "" : ", " + std::to_string(inputs.skipped.size()) + " skipped")
      << "; " << studies.size() << " stud" << (studies.size() == 1 ? "y" : "ies") << " summarised; "
      << record_path << "\n";
  return std::min(failed, 100);
}

namespace {

CLI::App* add_infer_options(CLI::App& app, InferCommand& infer) {
  CLI::App* command = app.add_subcommand(
      "infer",
      "run a checkpoint on mammograms (PNG, PGM, DICOM files and folders); exit code: how many "
      "failed");
  command->add_option("--checkpoint", infer.checkpoint, "checkpoint directory")->required();
  command->add_option("--out", infer.out, "output folder")->required();
  command->add_option("inputs", infer.inputs, "film files and folders of them")->required();
  return command;
}

}  // namespace

hds::common::Subcommand add_infer_command(CLI::App& app, std::ostream& out, std::ostream& errors) {
  auto command = std::make_shared<InferCommand>();
  return {add_infer_options(app, *command),
          [command, &out, &errors] { return run_infer_command(*command, out, errors); }};
}

}  // namespace hds::trainer

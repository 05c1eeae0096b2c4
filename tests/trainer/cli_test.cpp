// hds-trainer as a user runs it: describe's counts, configuration errors, a short fit, a SIGTERM
// that stops training with a checkpoint and exit code 75, and eval's outputs.
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segutils.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "hds/common/exit_codes.h"
#include "hds/config/config.h"
#include "hds/data/folder_writer.h"
#include "hds/data/phantom.h"
#include "hds/data/png_io.h"
#include "hds/test/child_process.h"
#include "hds/test/configs.h"
#include "hds/test/dicom_files.h"
#include "hds/test/files.h"
#include "hds/trainer/checkpoint.h"

extern char** environ;

namespace {
namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// hds-trainer with `arguments`, through the shell after `shell_prefix` (e.g. "ulimit -f 4; ").
CommandResult run(const std::string& arguments, const std::string& shell_prefix = "") {
  const std::string command =
      shell_prefix + "exec " + std::string(HDS_TRAINER_BINARY) + " " + arguments + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string write_config(const std::string& dir, const hds::config::Config& config) {
  const std::string path = dir + "/job.pbtxt";
  std::ofstream(path) << hds::config::to_text(config);
  return path;
}

TEST(TrainerCli, describe_prints_the_paper_models_counts_and_map_sizes) {
  const auto result = run("describe");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("\nparameters: 7278248\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("\ntrunk_conv3x3: 45\n"), std::string::npos);
  EXPECT_NE(result.output.find("\ncls_map_train: 4x3\n"), std::string::npos);
  EXPECT_NE(result.output.find("\ncls_map_test: 8x4\n"), std::string::npos);
}

TEST(TrainerCli, a_bad_config_value_exits_2_naming_file_line_and_field) {
  const auto dir = hds::test::scratch_dir("cli-bad-config");
  const std::string path = dir + "/bad.pbtxt";
  std::ofstream(path) << "train {\n  epochs: 3\n}\ndata {\n  patch_rows: 500\n}\n";
  const auto result = run("describe --config " + path);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find(path + ":5"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("data.patch_rows"), std::string::npos) << result.output;
  const auto unknown = run("describe --set train.epoch=3");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("train.epoch"), std::string::npos) << unknown.output;
}

TEST(TrainerCli, fit_trains_validates_and_checkpoints) {
  const auto dir = hds::test::scratch_dir("cli-fit");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  const auto result = run("fit --config " + config + " --set train.epochs=2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("epoch 2/2 step 2/2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("validation epoch 2: dice"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("eta"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt"));
  EXPECT_TRUE(fs::exists(dir + "/run/summary.json"));
}

TEST(TrainerCli, bench_prints_a_json_line_a_round_and_refuses_a_step_that_cannot_train) {
  const std::string bench = "bench --config " + std::string(HDS_SOURCE_DIR) +
                            "/deploy/configs/quickstart.pbtxt --steps 3 --warmup 1 --threads 1 ";
  const auto timed = run(bench + "--batch 2 --height 128 --width 256 --rounds 2");
  ASSERT_EQ(timed.exit_code, 0) << timed.output;
  std::istringstream output(timed.output);
  std::vector<nlohmann::json> lines;
  for (std::string text; std::getline(output, text);)
    if (!text.empty() && text[0] == '{') lines.push_back(nlohmann::json::parse(text));
  ASSERT_EQ(lines.size(), 2u) << timed.output;
  for (int round = 1; round <= 2; ++round) {
    const nlohmann::json& line = lines[round - 1];
    EXPECT_EQ(line.at("round"), round);
    EXPECT_EQ(line.at("batch"), 2);
    EXPECT_EQ(line.at("height"), 128);
    EXPECT_EQ(line.at("width"), 256);
    EXPECT_EQ(line.at("steps"), 3);
    EXPECT_EQ(line.at("device"), "cpu");
    EXPECT_EQ(line.at("precision"), "FP32");
    const double step_ms = line.at("median_step_ms");
    EXPECT_GT(step_ms, 0);
    EXPECT_NEAR(line.at("patches_per_second").get<double>(), 2 * 1000 / step_ms, 1e-6 / step_ms);
  }

  // One 128x128 patch: BatchNorm's deepest maps hold one value a channel. Said before any work,
  // in the tool's words, not as LibTorch's error and backtrace.
  const auto lone = run(bench + "--batch 1 --height 128 --width 128");
  EXPECT_EQ(lone.exit_code, hds::common::kExitError);
  EXPECT_NE(lone.output.find("use --batch 2 or more, or a larger patch"), std::string::npos)
      << lone.output;
  EXPECT_EQ(lone.output.find("frame #"), std::string::npos) << lone.output;
  const auto odd = run(bench + "--batch 2 --height 64 --width 128");
  EXPECT_EQ(odd.exit_code, hds::common::kExitError);
  EXPECT_NE(odd.output.find("positive multiples of 128, not 64x128"), std::string::npos)
      << odd.output;
}

TEST(TrainerCli, resume_auto_without_the_latest_folder_goes_on_from_the_newest_intact_one) {
  const auto dir = hds::test::scratch_dir("cli-resume-fallback");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  const auto first =
      run("fit --config " + config + " --set train.epochs=2 --set train.checkpoint_every=1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string checkpoints = dir + "/run/checkpoints";
  fs::remove_all(checkpoints + "/step-000000004");  // what `latest` names

  const auto resumed = run("fit --config " + config +
                           " --set train.epochs=3 --set train.checkpoint_every=1 --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("warning: --resume auto: " + checkpoints + "/latest points at " +
                                checkpoints + "/step-000000004, which is missing; resuming from " +
                                checkpoints + "/step-000000002, the newest intact checkpoint"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + checkpoints + "/step-000000002 at epoch 2"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("summary: 3 epochs, 6 steps"), std::string::npos) << resumed.output;
}

TEST(TrainerCli, resuming_a_corrupt_checkpoint_names_the_newest_intact_one) {
  const auto dir = hds::test::scratch_dir("cli-resume-corrupt");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=2 --set train.checkpoint_every=1")
                .exit_code,
            0);
  const std::string newest = dir + "/run/checkpoints/step-000000004";
  {
    std::fstream model(newest + "/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    model.seekp(100);
    model.put('\x5a');
  }
  const auto resumed = run("fit --config " + config + " --set train.epochs=3 --resume " + newest);
  EXPECT_EQ(resumed.exit_code, 1) << resumed.output;
  EXPECT_NE(resumed.output.find(newest + "/model.pt: corrupt"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("the newest intact checkpoint beside it is " + dir +
                                "/run/checkpoints/step-000000002"),
            std::string::npos)
      << resumed.output;
}

// On a terminal (a pseudo-terminal here) fit redraws one progress line in place: each redraw
// erases the line and fits the terminal's width; the other lines print above it whole.
TEST(TrainerCli, fit_on_a_terminal_redraws_one_progress_bar_with_an_eta) {
  const auto dir = hds::test::scratch_dir("cli-terminal");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  setenv("TERM", "xterm", 1);
  hds::test::ChildProcess fit(HDS_TRAINER_BINARY, {"fit", "--config", config},
                              hds::test::ChildOutput::terminal);
  const auto status = fit.wait_exit(300);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << fit.output();
  const std::string& out = fit.output();
  EXPECT_NE(out.find("\r\033[Kepoch 6/6 [####################] 100% step 2/2 loss "),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\r\033[Kvalidation epoch 2: dice"), std::string::npos) << out;
  EXPECT_EQ(out.find("\nepoch 1/6 step"), std::string::npos) << "plain progress lines:\n" << out;
  // Every redraw fits in one terminal line (the terminal translates \n into \r\n).
  for (size_t at = out.find("\033[Kepoch"); at != std::string::npos;
       at = out.find("\033[Kepoch", at + 1)) {
    const size_t end = out.find_first_of("\r\n", at);
    EXPECT_LT(end - at - 3, static_cast<size_t>(hds::test::kTerminalColumns))
        << out.substr(at, end - at);
    EXPECT_NE(out.substr(at, end - at).find(" eta "), std::string::npos)
        << out.substr(at, end - at);
  }
  // Piped, the same run prints whole lines only.
  const auto piped = run("fit --config " + config + " --set train.epochs=2");
  EXPECT_EQ(piped.output.find('\r'), std::string::npos) << piped.output;
}

TEST(TrainerCli, sigterm_stops_at_the_next_step_with_a_checkpoint_and_exit_75) {
  const auto dir = hds::test::scratch_dir("cli-sigterm");
  const auto config = write_config(
      dir, hds::test::tiny_config(dir + "/run", {"train.epochs=500", "train.log_every_steps=1"}));
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string binary = HDS_TRAINER_BINARY, fit = "fit", flag = "--config";
  std::string config_path = config;
  char* argv[] = {binary.data(), fit.data(), flag.data(), config_path.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  // Wait until training runs, then ask it to stop as Slurm's preemption would.
  std::string output;
  char buffer[256];
  while (output.find("epoch 1/500 step 1/2") == std::string::npos) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    ASSERT_GT(n, 0) << "trainer ended before its first step: " << output;
    output.append(buffer, static_cast<size_t>(n));
  }
  kill(pid, SIGTERM);
  while (true) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 75) << output;
  EXPECT_NE(output.find("on request"), std::string::npos) << output;
  ASSERT_TRUE(fs::exists(dir + "/run/checkpoints/latest/checkpoint.pbtxt")) << output;
  // The checkpoint resumes: one more step, then the step limit stops it again.
  const std::string latest = fs::read_symlink(dir + "/run/checkpoints/latest").filename().string();
  const long stopped_at = std::stol(latest.substr(latest.find('-') + 1));
  const auto resumed = run("fit --config " + config + " --resume " + dir + "/run/checkpoints" +
                           " --stop-at-step " + std::to_string(stopped_at + 1));
  EXPECT_EQ(resumed.exit_code, 75) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
}

// The rows of a CSV file, each split at commas (header included).
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    std::vector<std::string> cells;
    std::stringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

TEST(TrainerCli, eval_writes_both_protocols_beside_the_baselines_curves_rows_and_overlays) {
  const auto dir = hds::test::scratch_dir("cli-eval");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=2").exit_code, 0);
  const auto result = run("eval --checkpoint " + dir + "/run/checkpoints/latest --out " + dir +
                          "/eval --heads all --bootstrap 200");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("| lesion | lesion sensitivity |"), std::string::npos)
      << result.output;

  std::ifstream json_file(dir + "/eval/metrics.json");
  const auto metrics = nlohmann::json::parse(json_file);
  const auto& reports = metrics.at("reports");
  ASSERT_EQ(reports.size(), 6u);  // --heads all: one report per head
  const auto& last = reports.back();
  EXPECT_EQ(last.at("head"), 5);
  EXPECT_EQ(last.at("split"), "val");
  EXPECT_EQ(last.at("films"), 3);  // tiny_config: 3 validation phantoms
  EXPECT_EQ(last.at("froc").size(), 19u);
  // The reference Dice is the mean of the per-film rows, and its interval brackets it.
  const auto rows = csv_rows(dir + "/eval/films.csv");
  ASSERT_EQ(rows.size(), 4u);
  ASSERT_EQ(rows[0][5], "dice");
  double dice_sum = 0;
  for (size_t i = 1; i < rows.size(); ++i) dice_sum += std::stod(rows[i][5]);
  const auto& dice = last.at("model").at("reference").at("dice");
  EXPECT_NEAR(dice.at("value").get<double>(), dice_sum / 3, 1e-5);
  EXPECT_LE(dice.at("low").get<double>(), dice.at("value").get<double>());
  EXPECT_GE(dice.at("high").get<double>(), dice.at("value").get<double>());
  // The all-positive baseline's accuracy is the share of films with a mass.
  const int with_mass = last.at("films_with_mass");
  EXPECT_DOUBLE_EQ(last.at("baselines").at("all_positive").at("accuracy").get<double>(),
                   with_mass / 3.0);
  // Curves and one RGB overlay per film at the film's size (PNG IHDR: width, height, type 2).
  for (const char* name : {"roc.svg", "froc.svg", "metrics.md"}) {
    EXPECT_TRUE(fs::exists(dir + "/eval/" + name)) << name;
  }
  EXPECT_NE(hds::test::read_text(dir + "/eval/froc.svg").find("<polyline"), std::string::npos);
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::string png = hds::test::read_text(dir + "/eval/overlays/" + rows[i][0] + ".png");
    ASSERT_GE(png.size(), 26u) << rows[i][0];
    auto be32 = [&](size_t at) {
      return (static_cast<unsigned char>(png[at]) << 24) |
             (static_cast<unsigned char>(png[at + 1]) << 16) |
             (static_cast<unsigned char>(png[at + 2]) << 8) |
             static_cast<unsigned char>(png[at + 3]);
    };
    EXPECT_EQ(be32(16), 128u);  // tiny_config films: 256 rows x 128 cols
    EXPECT_EQ(be32(20), 256u);
    EXPECT_EQ(png[25], 2);  // colour type RGB
  }
  // Another dataset's films are normalised with the training split's statistics, which the
  // checkpoint carries, not with their own.
  auto normalisation = [](const std::string& output) {
    const auto at = output.find("normalised with mean ");
    return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
  };
  const auto other =
      run("eval --checkpoint " + dir + "/run/checkpoints/latest --out " + dir +
          "/eval-other --split all --bootstrap 10 --set \"data.phantom={train_count: "
          "4 val_count: 2 test_count: 0 seed: 99}\"");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(normalisation(result.output).find("(the checkpoint's)"), std::string::npos)
      << result.output;
  EXPECT_EQ(normalisation(other.output), normalisation(result.output)) << other.output;
}

TEST(TrainerCli, eval_reports_the_films_it_had_to_leave_out) {
  const auto dir = hds::test::scratch_dir("cli-eval-skip");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  // A folder dataset of three validation films, one of them unreadable.
  {
    hds::data::FolderDatasetWriter writer(dir + "/films");
    for (const char* id : {"a", "b", "c"}) {
      hds::data::GreyImage image{256, 128, 255, std::vector<uint16_t>(256 * 128, 120)};
      std::vector<uint8_t> mask(image.pixels.size(), 0);
      writer.add("val", id, image, mask);
      writer.add("train", std::string("t") + id, image, mask);
    }
    writer.finish();
  }
  hds::test::write_text(dir + "/films/img/b.png", "not a png");
  const auto result = run("eval --checkpoint " + dir + "/run/checkpoints --split val --out " + dir +
                          "/eval --bootstrap 20 --set data.source=folder --set data.root=" + dir +
                          "/films --set data.on_bad_sample=SKIP --set data.use_cache=false");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("eval: 2 films of split val (folder; 1 films of the dataset left "
                               "out while loading, named in the report)"),
            std::string::npos)
      << result.output;
  const auto report =
      nlohmann::json::parse(hds::test::read_text(dir + "/eval/metrics.json")).at("reports").back();
  EXPECT_EQ(report.at("films"), 2);
  EXPECT_EQ(report.at("left_out").at("films"), 1);
  ASSERT_EQ(report.at("left_out").at("why").size(), 1u);
  const std::string why = report.at("left_out").at("why")[0];
  EXPECT_NE(why.find("skipped film b (data.on_bad_sample SKIP): " + dir + "/films/img/b.png"),
            std::string::npos)
      << why;
  const std::string markdown = hds::test::read_text(dir + "/eval/metrics.md");
  EXPECT_NE(markdown.find("**Left out while loading the dataset** (from any split): 1 films, 0 "
                          "masses.\n\n- " +
                          why + "\n"),
            std::string::npos)
      << markdown;
}

TEST(TrainerCli, eval_of_an_empty_split_names_it_and_exits_2) {
  const auto dir = hds::test::scratch_dir("cli-eval-empty");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  // tiny_config has no test films.
  const auto result = run("eval --checkpoint " + dir +
                          "/run/checkpoints/latest --split test --out " + dir + "/eval");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("split test of phantom has no films"), std::string::npos)
      << result.output;
}

// Width and height from a PNG's IHDR chunk.
std::pair<unsigned, unsigned> png_size(const std::string& path) {
  const std::string png = hds::test::read_text(path);
  if (png.size() < 24) return {0, 0};
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<unsigned>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<unsigned>(static_cast<unsigned char>(png[at + 2])) << 8) |
           static_cast<unsigned>(static_cast<unsigned char>(png[at + 3]));
  };
  return {be32(16), be32(20)};
}

TEST(TrainerCli, infer_refuses_a_checkpoint_whose_normalisation_was_edited) {
  const auto dir = hds::test::scratch_dir("cli-infer-edited-meta");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  const std::string checkpoint = fs::canonical(dir + "/run/checkpoints/latest").string();
  const std::string meta_path = checkpoint + "/checkpoint.pbtxt";
  std::string meta = hds::test::read_text(meta_path);
  const size_t mean = meta.find("data_mean: 0.");
  ASSERT_NE(mean, std::string::npos) << meta;
  char& digit = meta[mean + std::string("data_mean: 0.").size()];
  digit = digit == '9' ? '1' : static_cast<char>(digit + 1);  // one digit, as a user might
  hds::test::write_text(meta_path, meta);
  std::vector<uint8_t> levels(256 * 128, 90);
  hds::data::write_grey_png(dir + "/film.png", 256, 128, levels);
  const auto result =
      run("infer --checkpoint " + checkpoint + " --out " + dir + "/out " + dir + "/film.png");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find(meta_path + ": corrupt"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir + "/out/film.mask.png"))
      << "nothing scored with the edited normalisation";
}

// A 256x128 film of noise: its overlay PNG does not compress below a few KB.
void write_noisy_film(const std::string& path, unsigned seed) {
  std::vector<uint8_t> levels(256 * 128);
  for (size_t i = 0; i < levels.size(); ++i)
    levels[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 13);
  hds::data::write_grey_png(path, 256, 128, levels);
}

TEST(TrainerCli, infer_never_writes_over_its_inputs) {
  const auto dir = hds::test::scratch_dir("cli-infer-inputs");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  // The user's films: a.png, and a film that happens to be called a.mask.png.
  write_noisy_film(dir + "/a.png", 1);
  write_noisy_film(dir + "/a.mask.png", 2);
  const std::string film = hds::test::read_text(dir + "/a.png");
  const std::string other = hds::test::read_text(dir + "/a.mask.png");
  const auto result = run("infer --checkpoint " + dir + "/run/checkpoints --out " + dir + " " +
                          dir + "/a.png " + dir + "/a.mask.png");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(hds::test::read_text(dir + "/a.png"), film);
  EXPECT_EQ(hds::test::read_text(dir + "/a.mask.png"), other);
  // a.png's outputs took the next free name and say so; a.mask.png's are its own.
  EXPECT_NE(result.output.find(dir + "/a.png: mass probability"), std::string::npos);
  EXPECT_NE(result.output.find(dir + "/a-2.mask.png"), std::string::npos) << result.output;
  EXPECT_EQ(png_size(dir + "/a-2.mask.png"), std::make_pair(128u, 256u));
  EXPECT_EQ(png_size(dir + "/a.mask.mask.png"), std::make_pair(128u, 256u));
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file);
}

TEST(TrainerCli, infer_on_a_full_disk_leaves_no_half_written_output) {
  const auto dir = hds::test::scratch_dir("cli-infer-full");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  write_noisy_film(dir + "/film.png", 3);
  fs::create_directories(dir + "/out");
  // Files may not grow past a few KiB (EFBIG, as ENOSPC on a full disk): the overlay cannot be
  // written.
  const auto result = run(
      "infer --checkpoint " + dir + "/run/checkpoints --out " + dir + "/out " + dir + "/film.png",
      "trap '' XFSZ; ulimit -f 4; ");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find(dir + "/out/film."), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("File too large"), std::string::npos) << result.output;
  for (const auto& entry : fs::directory_iterator(dir + "/out")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".partial"), std::string::npos) << name;
    if (name == "film.mask.png") {
      EXPECT_EQ(hds::data::read_grey_png(entry.path().string()).rows, 256) << "whole";
    } else if (name == "infer-run.json") {  // the record of the run says what failed
      const auto record = read_json(entry.path().string());
      ASSERT_EQ(record.at("failed").size(), 1u);
      EXPECT_EQ(record.at("failed")[0].at("input"), dir + "/film.png");
      EXPECT_NE(record.at("failed")[0].at("error").get<std::string>().find("File too large"),
                std::string::npos);
    } else {
      ADD_FAILURE() << "written despite the failure: " << name << " ("
                    << fs::file_size(entry.path()) << " bytes)";
    }
  }
}

TEST(TrainerCli,
     infer_gives_outputs_in_each_films_geometry_and_counts_the_films_it_could_not_read) {
  const auto dir = hds::test::scratch_dir("cli-infer");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  // An odd-sized 8-bit PNG with blank columns at both sides, a 16-bit PGM, and a broken file.
  constexpr int kRows = 301, kCols = 173;
  std::vector<uint8_t> levels(kRows * kCols, 0);
  for (int r = 0; r < kRows; ++r) {
    for (int c = 20; c < kCols - 15; ++c) levels[r * kCols + c] = static_cast<uint8_t>(60 + r % 90);
  }
  hds::data::write_grey_png(dir + "/odd.png", kRows, kCols, levels);
  std::string pgm = "P5\n7 9\n65535\n";
  for (int i = 0; i < 7 * 9; ++i) pgm += std::string{static_cast<char>(i), static_cast<char>(i)};
  hds::test::write_text(dir + "/small.pgm", pgm);
  hds::test::write_text(dir + "/broken.png", "not a png");
  const auto result = run("infer --checkpoint " + dir + "/run/checkpoints/latest --out " + dir +
                          "/out " + dir + "/odd.png " + dir + "/broken.png " + dir + "/small.pgm");
  EXPECT_EQ(result.exit_code, 1) << result.output;  // one film failed
  EXPECT_NE(result.output.find("infer: " + dir + "/broken.png: failed:"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("2 of 3 films done, 1 failed"), std::string::npos) << result.output;
  EXPECT_EQ(png_size(dir + "/out/odd.mask.png"), std::make_pair(173u, 301u));
  EXPECT_EQ(png_size(dir + "/out/odd.overlay.png"), std::make_pair(173u, 301u));
  EXPECT_EQ(png_size(dir + "/out/small.mask.png"), std::make_pair(7u, 9u));
  // The JSON's lesions are the mask's components, inside the film and outside its blank columns.
  std::ifstream json_file(dir + "/out/odd.json");
  const auto report = nlohmann::json::parse(json_file);
  EXPECT_EQ(report.at("rows"), kRows);
  EXPECT_EQ(report.at("cols"), kCols);
  EXPECT_EQ(report.at("kind"), "png");
  const double probability = report.at("mass_probability");
  EXPECT_GE(probability, 0.0);
  EXPECT_LE(probability, 1.0);
  const auto mask = hds::data::read_grey_png(dir + "/out/odd.mask.png");
  long mask_pixels = 0, lesion_pixels = 0;
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kCols; ++c) {
      const bool on = mask.pixels[r * kCols + c] != 0;
      mask_pixels += on;
      if (c < 20 || c >= kCols - 15) {
        EXPECT_FALSE(on) << "blank column " << c;
      }
    }
  }
  for (const auto& lesion : report.at("lesions")) {
    lesion_pixels += lesion.at("area_pixels").get<long>();
    EXPECT_LE(lesion.at("bottom").get<int>(), kRows - 1);
    EXPECT_GE(lesion.at("left").get<int>(), 20);
    EXPECT_GT(lesion.at("peak_probability").get<double>(), 0.5);
  }
  EXPECT_EQ(lesion_pixels, mask_pixels);
}

std::string dicom_text(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  item.findAndGetOFString(tag, value);
  return value.c_str();
}

// A DICOM film whose display pipeline (rescale 2 v - 100, LINEAR_EXACT window 1645 / 510,
// MONOCHROME1) gives exactly the 8-bit phantom p as 257 p of 65535: stored values 1000 - p. Its PNG
// twin holds p itself, so both reach the network as the same 0..1 image.
TEST(TrainerCli, infer_reads_a_dicom_film_as_its_png_twin_and_writes_a_segmentation) {
  const auto dir = hds::test::scratch_dir("cli-infer-dicom");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=2").exit_code, 0);
  constexpr int kRows = 256, kCols = 128;
  const hds::data::PhantomFilm phantom = hds::data::make_phantom(11, 3, kRows, kCols, 0);
  hds::data::write_grey_png(dir + "/twin.png", kRows, kCols, phantom.image);
  hds::test::DicomFixture fixture;
  fixture.rows = kRows;
  fixture.cols = kCols;
  fixture.bits_stored = 12;
  fixture.photometric = "MONOCHROME1";
  for (uint8_t p : phantom.image) fixture.pixels.push_back(static_cast<uint16_t>(1000 - p));
  fixture.more_tags = [](DcmDataset& d) {
    d.putAndInsertString(DCM_RescaleSlope, "2");
    d.putAndInsertString(DCM_RescaleIntercept, "-100");
    d.putAndInsertString(DCM_WindowCenter, "1645");
    d.putAndInsertString(DCM_WindowWidth, "510");
    d.putAndInsertString(DCM_VOILUTFunction, "LINEAR_EXACT");
    d.putAndInsertString(DCM_ImagerPixelSpacing, "0.1\\0.2");
    d.putAndInsertString(DCM_ImageLaterality, "L");
    d.putAndInsertString(DCM_ViewPosition, "CC");
  };
  hds::test::write_dicom_fixture(dir + "/film.dcm", fixture);
  // The same stored values read as MONOCHROME2: what a reader that skipped a step would see.
  fixture.photometric = "MONOCHROME2";
  hds::test::write_dicom_fixture(dir + "/uninverted.dcm", fixture);

  const auto result =
      run("infer --checkpoint " + dir + "/run/checkpoints/latest --out " + dir + "/out " + dir +
          "/twin.png " + dir + "/film.dcm " + dir + "/uninverted.dcm");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto png = read_json(dir + "/out/twin.json");
  const auto dicom = read_json(dir + "/out/film.json");
  const auto uninverted = read_json(dir + "/out/uninverted.json");
  EXPECT_DOUBLE_EQ(dicom.at("mass_probability").get<double>(),
                   png.at("mass_probability").get<double>());
  EXPECT_NE(uninverted.at("mass_probability").get<double>(),
            png.at("mass_probability").get<double>());
  const auto png_mask = hds::data::read_grey_png(dir + "/out/twin.mask.png");
  const auto dicom_mask = hds::data::read_grey_png(dir + "/out/film.mask.png");
  EXPECT_EQ(dicom_mask.pixels, png_mask.pixels);
  EXPECT_TRUE(png.at("pixel_spacing_mm").is_null());
  EXPECT_EQ(dicom.at("pixel_spacing_mm"), nlohmann::json({0.1, 0.2}));
  EXPECT_EQ(dicom.at("pixel_spacing_tag"), "ImagerPixelSpacing");
  EXPECT_EQ(dicom.at("laterality"), "L");
  EXPECT_EQ(dicom.at("view"), "CC");
  for (const auto& lesion : dicom.at("lesions")) {
    EXPECT_NEAR(lesion.at("area_mm2").get<double>(), lesion.at("area_pixels").get<int>() * 0.02,
                1e-9);
  }

  // The Segmentation reads back with DCMTK: one binary frame of the film's size holding the
  // mask, in the film's study, referencing its series and instance.
  const std::string seg_path = dicom.at("segmentation");
  EXPECT_EQ(seg_path, dir + "/out/film.seg.dcm");
  DcmSegmentation* loaded = nullptr;
  ASSERT_TRUE(DcmSegmentation::loadFile(seg_path.c_str(), loaded).good());
  std::unique_ptr<DcmSegmentation> segmentation(loaded);
  ASSERT_EQ(segmentation->getNumberOfFrames(), 1u);
  ASSERT_EQ(segmentation->getSegmentationType(), DcmSegTypes::ST_BINARY);
  std::unique_ptr<DcmIODTypes::Frame> frame(
      DcmSegUtils::unpackBinaryFrame(segmentation->getFrame(0), kRows, kCols));
  ASSERT_TRUE(frame);
  ASSERT_EQ(frame->length, static_cast<size_t>(kRows) * kCols);
  for (size_t i = 0; i < frame->length; ++i) {
    ASSERT_EQ(frame->pixData[i] != 0, dicom_mask.pixels[i] != 0) << "pixel " << i;
  }
  DcmFileFormat seg_file, film_file;
  ASSERT_TRUE(seg_file.loadFile(seg_path.c_str()).good());
  ASSERT_TRUE(film_file.loadFile((dir + "/film.dcm").c_str()).good());
  DcmDataset& seg = *seg_file.getDataset();
  DcmDataset& film = *film_file.getDataset();
  EXPECT_EQ(dicom_text(seg, DCM_SOPClassUID), UID_SegmentationStorage);
  EXPECT_EQ(dicom_text(seg, DCM_Modality), "SEG");
  Uint16 rows = 0, cols = 0;
  seg.findAndGetUint16(DCM_Rows, rows);
  seg.findAndGetUint16(DCM_Columns, cols);
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(cols, kCols);
  EXPECT_EQ(dicom_text(seg, DCM_StudyInstanceUID), dicom_text(film, DCM_StudyInstanceUID));
  EXPECT_NE(dicom_text(seg, DCM_SeriesInstanceUID), dicom_text(film, DCM_SeriesInstanceUID));
  EXPECT_EQ(dicom_text(seg, DCM_PatientID), dicom_text(film, DCM_PatientID));
  DcmItem* series = nullptr;
  ASSERT_TRUE(seg.findAndGetSequenceItem(DCM_ReferencedSeriesSequence, series, 0).good());
  EXPECT_EQ(dicom_text(*series, DCM_SeriesInstanceUID), dicom_text(film, DCM_SeriesInstanceUID));
  DcmItem* instance = nullptr;
  ASSERT_TRUE(series->findAndGetSequenceItem(DCM_ReferencedInstanceSequence, instance, 0).good());
  EXPECT_EQ(dicom_text(*instance, DCM_ReferencedSOPInstanceUID),
            dicom_text(film, DCM_SOPInstanceUID));
  // The frame's Derivation Image names the same instance.
  DcmStack found;
  ASSERT_TRUE(seg.findAndGetElements(DCM_SourceImageSequence, found).good());
  auto* sources = dynamic_cast<DcmSequenceOfItems*>(found.top());
  ASSERT_TRUE(sources != nullptr && sources->card() == 1);
  EXPECT_EQ(dicom_text(*sources->getItem(0), DCM_ReferencedSOPInstanceUID),
            dicom_text(film, DCM_SOPInstanceUID));

  // The lesions partition the mask, so their centres weighted by area sum the mask's pixel
  // centres; each longest diameter lies between the longer side and the diagonal of its box.
  double centre_sum = 0, weighted_centres = 0;
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c)
      if (dicom_mask.pixels[static_cast<size_t>(r) * kCols + c] != 0) centre_sum += c + 0.5;
  for (const auto& lesion : dicom.at("lesions")) {
    weighted_centres += lesion.at("centre")[0].get<double>() * lesion.at("area_pixels").get<int>();
    const double width = (lesion.at("right").get<int>() - lesion.at("left").get<int>() + 1) * 0.2;
    const double height = (lesion.at("bottom").get<int>() - lesion.at("top").get<int>() + 1) * 0.1;
    const double diameter = lesion.at("longest_diameter_mm");
    EXPECT_GE(diameter, std::max(width, height) - 1e-9);
    EXPECT_LE(diameter, std::hypot(width, height) + 1e-9);
  }
  EXPECT_NEAR(weighted_centres, centre_sum, 1e-6 * std::max(1.0, centre_sum));

  // The SEG and SR infer wrote pass dciodvfy.
  const std::string dciodvfy = hds::test::find_program("dciodvfy");
  if (!dciodvfy.empty()) {
    hds::test::expect_dciodvfy_clean(dciodvfy, seg_path, "Segmentation");
    hds::test::expect_dciodvfy_clean(dciodvfy, dicom.at("structured_report"), "ComprehensiveSR");
  }

  // The structured report reads back with DCMTK's dcmsr: the film's probability first, then one
  // measurement group per lesion with the JSON's area.
  const std::string sr_path = dicom.at("structured_report");
  EXPECT_EQ(sr_path, dir + "/out/film.sr.dcm");
  DcmFileFormat sr_file;
  ASSERT_TRUE(sr_file.loadFile(sr_path.c_str()).good());
  DSRDocument sr;
  ASSERT_TRUE(sr.read(*sr_file.getDataset()).good());
  EXPECT_EQ(sr.getDocumentType(), DSRTypes::DT_ComprehensiveSR);
  size_t lesion_groups = 0;
  std::vector<double> areas, probabilities;
  DSRDocumentTree& tree = sr.getTree();
  ASSERT_GT(tree.gotoRoot(), 0u);
  do {
    const DSRContentItem& item = tree.getCurrentContentItem();
    const std::string code = item.getConceptName().getCodeValue().c_str();
    if (code == "112039" && item.getStringValue().substr(0, 7) == "lesion ") ++lesion_groups;
    if (code == "42798000")
      areas.push_back(std::stod(item.getNumericValue().getNumericValue().c_str()));
    if (code == "122157")
      probabilities.push_back(std::stod(item.getNumericValue().getNumericValue().c_str()));
  } while (tree.iterate() > 0);
  EXPECT_EQ(lesion_groups, dicom.at("lesions").size());
  ASSERT_EQ(areas.size(), dicom.at("lesions").size());
  for (size_t k = 0; k < areas.size(); ++k)
    EXPECT_NEAR(areas[k], dicom.at("lesions")[k].at("area_mm2").get<double>(), 1e-6 * areas[k]);
  ASSERT_FALSE(probabilities.empty());
  EXPECT_NEAR(probabilities[0], dicom.at("mass_probability").get<double>(), 1e-8);
}

// The value of the first content item of the structured report at `path` whose concept has
// `code`, as DCMTK's dcmsr reads it; "" when there is none.
std::string sr_text_of(const std::string& path, const std::string& code) {
  DcmFileFormat file;
  DSRDocument report;
  if (file.loadFile(path.c_str()).bad() || report.read(*file.getDataset()).bad()) return "";
  DSRDocumentTree& tree = report.getTree();
  if (tree.gotoRoot() == 0) return "";
  do {
    const DSRContentItem& item = tree.getCurrentContentItem();
    if (item.getConceptName().getCodeValue() == code.c_str()) return item.getStringValue().c_str();
  } while (tree.iterate() > 0);
  return "";
}

// A folder as a radiology department exports it: two studies in series folders that repeat file
// names, a structured report (no pixels), a CT image, a text file and a corrupt .dcm beside the
// mammograms, and infer's own output folder inside it. The films are read and named by their
// path, the others skipped with the reason (the corrupt one fails by name), and each study gets a
// summary whose breasts, views and probabilities agree with the per-film reports.
TEST(TrainerCli, infer_on_a_folder_summarises_each_study_by_breast_and_skips_what_is_no_film) {
  const auto dir = hds::test::scratch_dir("cli-infer-studies");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  constexpr int kRows = 192, kCols = 128;
  const auto write_film = [&](const std::string& path, const std::string& study, const char* side,
                              const char* view, uint64_t seed, const char* modality = "MG") {
    const hds::data::PhantomFilm phantom = hds::data::make_phantom(seed, 1, kRows, kCols, 0);
    hds::test::DicomFixture fixture;
    fixture.rows = kRows;
    fixture.cols = kCols;
    fixture.bits_stored = 8;
    fixture.patient_id = "patient-" + study;
    fixture.pixels.assign(phantom.image.begin(), phantom.image.end());
    fixture.more_tags = [=](DcmDataset& d) {
      d.putAndInsertString(DCM_StudyInstanceUID, ("1.2.826.0.1.3680043.10." + study).c_str());
      d.putAndInsertString(DCM_StudyDate, "20261201");
      d.putAndInsertString(DCM_AccessionNumber, ("ACC" + study).c_str());
      d.putAndInsertString(DCM_ImageLaterality, side);
      d.putAndInsertString(DCM_ViewPosition, view);
      d.putAndInsertString(DCM_PixelSpacing, "0.1\\0.1");
      d.putAndInsertString(DCM_Modality, modality);
    };
    hds::test::write_dicom_fixture(path, fixture);
  };
  const std::string in = dir + "/export";
  write_film(in + "/A/1/IM-0001.dcm", "1", "R", "CC", 1);
  write_film(in + "/A/2/IM-0001.dcm", "1", "R", "MLO", 2);
  write_film(in + "/A/3/IM-0001.dcm", "1", "L", "CC", 3);
  write_film(in + "/A/4/IM-0001.dcm", "1", "L", "MLO", 4);
  write_film(in + "/B/IM-0001.dcm", "2", "L", "CC", 5);
  write_film(in + "/B/ct.dcm", "2", "L", "CC", 6, "CT");
  {
    DcmFileFormat report;  // a Basic Text SR: no pixel data
    report.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_BasicTextSRStorage);
    report.getDataset()->putAndInsertString(DCM_Modality, "SR");
    ASSERT_TRUE(report.saveFile((in + "/B/report.dcm").c_str(), EXS_LittleEndianExplicit).good());
  }
  hds::test::write_text(in + "/notes.txt", "radiologist's notes\n");
  hds::test::write_text(in + "/broken.dcm", "not DICOM at all");
  const std::string out = in + "/out";
  const std::string command =
      "infer --checkpoint " + dir + "/run/checkpoints/latest --out " + out + " " + in;
  const auto result = run(command);
  EXPECT_EQ(result.exit_code, 1) << result.output;  // broken.dcm
  EXPECT_NE(result.output.find(in + "/broken.dcm: failed:"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("5 of 6 films done, 1 failed, 3 skipped; 2 studies summarised"),
            std::string::npos)
      << result.output;

  const auto record = read_json(out + "/infer-run.json");
  std::map<std::string, std::string> skipped;
  for (const auto& entry : record.at("skipped")) skipped[entry.at("input")] = entry.at("reason");
  ASSERT_EQ(skipped.size(), 3u) << record.dump(2);
  EXPECT_NE(skipped[in + "/B/report.dcm"].find("DICOM without pixel data (BasicTextSRStorage)"),
            std::string::npos);
  EXPECT_NE(skipped[in + "/B/ct.dcm"].find("modality CT, not a mammogram"), std::string::npos);
  EXPECT_NE(skipped[in + "/notes.txt"].find("not a film file"), std::string::npos);
  ASSERT_EQ(record.at("failed").size(), 1u);
  EXPECT_EQ(record.at("failed")[0].at("input"), in + "/broken.dcm");
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& film : record.at("films")) by_name[film.at("name")] = film;
  for (const char* name :
       {"A_1_IM-0001", "A_2_IM-0001", "A_3_IM-0001", "A_4_IM-0001", "B_IM-0001"}) {
    EXPECT_EQ(by_name.count(name), 1u) << name << " in " << record.dump(2);
  }

  // Each breast's highest probability is the largest of its films' own reports, on that view.
  const auto film_report = [&](const std::string& name) {
    return read_json(out + "/" + name + ".json");
  };
  const auto study_a = read_json(out + "/studies/1.2.826.0.1.3680043.10.1.json");
  EXPECT_EQ(study_a.at("patient_id"), "patient-1");
  EXPECT_EQ(study_a.at("accession_number"), "ACC1");
  ASSERT_EQ(study_a.at("breasts").size(), 2u);
  const std::vector<std::pair<std::string, std::vector<std::string>>> breasts = {
      {"R", {"A_1_IM-0001", "A_2_IM-0001"}}, {"L", {"A_3_IM-0001", "A_4_IM-0001"}}};
  for (size_t b = 0; b < breasts.size(); ++b) {
    const auto& breast = study_a.at("breasts")[b];
    EXPECT_EQ(breast.at("laterality"), breasts[b].first);
    const auto cc = film_report(breasts[b].second[0]);
    const auto mlo = film_report(breasts[b].second[1]);
    const double highest =
        std::max(cc.at("mass_probability").get<double>(), mlo.at("mass_probability").get<double>());
    EXPECT_DOUBLE_EQ(breast.at("highest_mass_probability").get<double>(), highest);
    EXPECT_EQ(breast.at("view"), cc.at("mass_probability").get<double>() == highest ? "CC" : "MLO");
    EXPECT_EQ(breast.at("positive").get<bool>(), highest > 0.5);
    EXPECT_TRUE(breast.at("missing_views").empty());
    EXPECT_EQ(breast.at("lesions").size(), cc.at("lesions").size() + mlo.at("lesions").size());
  }
  const auto study_b = read_json(out + "/studies/1.2.826.0.1.3680043.10.2.json");
  ASSERT_EQ(study_b.at("breasts").size(), 1u);
  EXPECT_EQ(study_b.at("breasts")[0].at("missing_views"), nlohmann::json({"MLO"}));
  const std::string markdown = hds::test::read_text(out + "/studies/1.2.826.0.1.3680043.10.2.md");
  EXPECT_NE(markdown.find("| Left | "), std::string::npos) << markdown;
  EXPECT_NE(markdown.find(" | CC | MLO |"), std::string::npos) << markdown;

  // Every structured report of the run names the model by the same Device Observer UID.
  for (const char* name : {"A_1_IM-0001", "B_IM-0001"}) {
    EXPECT_EQ(sr_text_of(out + "/" + name + ".sr.dcm", "121012"), record.at("device_uid"));
  }

  // Again into the same folder: its own outputs (masks, SEGs, SRs) are not taken for films.
  const auto again = run(command);
  EXPECT_NE(again.output.find("5 of 6 films done, 1 failed, 3 skipped"), std::string::npos)
      << again.output;
}

// A 256 x 128 film (the tiny network's input size) with no blank column, as a binary PGM: for it
// the preprocessing is only the grey scale and the normalisation, which the Python check redoes.
void write_unresized_pgm(const std::string& path) {
  std::string pgm = "P5\n128 256\n255\n";
  for (int r = 0; r < 256; ++r) {
    for (int c = 0; c < 128; ++c) {
      int level = 60 + (r * 40) / 256 + (c * 40) / 128 + ((r * 7 + c * 13) % 17);
      if ((r - 120) * (r - 120) + (c - 60) * (c - 60) < 400) level += 80;
      pgm += static_cast<char>(level);
    }
  }
  hds::test::write_text(path, pgm);
}

// The keys MONAI Bundle's metadata schema (meta_schema_20220324) requires, with their JSON types,
// and those of each tensor format in network_data_format.
void expect_monai_metadata(const nlohmann::json& metadata) {
  for (const char* key : {"version", "monai_version", "pytorch_version", "numpy_version", "task",
                          "description", "authors", "copyright"}) {
    ASSERT_TRUE(metadata.contains(key) && metadata.at(key).is_string()) << key;
  }
  ASSERT_TRUE(metadata.at("changelog").is_object());
  EXPECT_TRUE(metadata.at("changelog").contains(metadata.at("version").get<std::string>()));
  ASSERT_TRUE(metadata.at("optional_packages_version").is_object());
  const auto& formats = metadata.at("network_data_format");
  for (const auto& [direction, name] :
       std::vector<std::pair<std::string, std::string>>{{"inputs", "image"}, {"outputs", "pred"}}) {
    const auto& format = formats.at(direction).at(name);
    for (const char* key : {"type", "format", "dtype"}) EXPECT_TRUE(format.at(key).is_string());
    EXPECT_TRUE(format.at("num_channels").is_number_integer());
    EXPECT_EQ(format.at("spatial_shape"), nlohmann::json({256, 128}));
    EXPECT_TRUE(format.at("value_range").is_array());
    EXPECT_TRUE(format.at("is_patch_data").is_boolean());
    EXPECT_EQ(format.at("channel_def").size(), format.at("num_channels").get<size_t>());
  }
}

// A bundle of the best-Dice checkpoint with its evaluation: MONAI's metadata, the normalisation
// and configuration of the checkpoint, its selection record and evaluation; infer runs it exactly
// as the checkpoint; and Python PyTorch, loading the bundle's weights into an independent model,
// reproduces what infer wrote.
TEST(TrainerCli, a_model_bundle_describes_its_checkpoint_and_runs_as_it_in_infer_and_python) {
  const auto dir = hds::test::scratch_dir("cli-bundle");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=2").exit_code, 0);
  const std::string checkpoint = dir + "/run/checkpoints/best-dice";
  ASSERT_EQ(
      run("eval --checkpoint " + checkpoint + " --split val --out " + dir + "/eval --bootstrap 50")
          .exit_code,
      0);
  const auto exported = run("export --checkpoint " + checkpoint + " --bundle " + dir +
                            "/bundle --evaluation " + dir + "/eval --changelog 'first release'");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;

  const auto metadata = read_json(dir + "/bundle/configs/metadata.json");
  expect_monai_metadata(metadata);
  EXPECT_EQ(metadata.at("version"), "0.1.0");
  EXPECT_EQ(metadata.at("changelog").at("0.1.0"), "first release");
  const hds::checkpoint::CheckpointMeta meta = hds::trainer::read_checkpoint_meta(checkpoint);
  EXPECT_EQ(metadata.at("hds").at("normalisation").at("mean").get<double>(), meta.data_mean());
  EXPECT_EQ(metadata.at("hds").at("normalisation").at("std").get<double>(), meta.data_std());
  EXPECT_EQ(hds::config::to_text(hds::config::load_config(dir + "/bundle/configs/training.pbtxt")),
            hds::config::to_text(hds::trainer::saved_config(meta, checkpoint)));
  const auto metrics = read_json(dir + "/bundle/docs/metrics.json");
  EXPECT_EQ(metrics.at("evaluation"), read_json(dir + "/eval/metrics.json"));
  EXPECT_EQ(metrics.at("selection").at("checkpoint"), "best-dice");
  EXPECT_EQ(metrics.at("selection").at("global_step"), meta.global_step());
  EXPECT_DOUBLE_EQ(metrics.at("selection").at("validation").at("dice").get<double>(),
                   meta.best_dice().dice());
  const std::string card = hds::test::read_text(dir + "/bundle/docs/README.md");
  EXPECT_NE(card.find(hds::test::read_text(dir + "/eval/metrics.md")), std::string::npos);
  EXPECT_NE(card.find("Not a medical device"), std::string::npos);

  // infer with the bundle gives what it gives with the checkpoint.
  write_noisy_film(dir + "/noisy.png", 4);
  write_unresized_pgm(dir + "/film.pgm");
  const std::string films = " " + dir + "/noisy.png " + dir + "/film.pgm";
  ASSERT_EQ(
      run("infer --checkpoint " + dir + "/bundle --out " + dir + "/by-bundle" + films).exit_code,
      0);
  ASSERT_EQ(run("infer --checkpoint " + checkpoint + " --out " + dir + "/by-checkpoint" + films)
                .exit_code,
            0);
  for (const char* name : {"noisy", "film"}) {
    const auto bundle = read_json(dir + "/by-bundle/" + name + ".json");
    const auto original = read_json(dir + "/by-checkpoint/" + name + ".json");
    EXPECT_EQ(bundle.at("mass_probability"), original.at("mass_probability")) << name;
    EXPECT_EQ(bundle.at("lesions"), original.at("lesions")) << name;
    EXPECT_EQ(bundle.at("model"), "bundle 0.1.0");
    EXPECT_EQ(read_json(dir + "/by-bundle/infer-run.json").at("device_uid"),
              metadata.at("hds").at("device_observer_uid"));
    EXPECT_EQ(hds::test::read_text(dir + "/by-bundle/" + name + ".mask.png"),
              hds::test::read_text(dir + "/by-checkpoint/" + name + ".mask.png"))
        << name;
  }

  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Python PyTorch (python3-torch) not installed";
  }
  const std::string check = std::string("/usr/bin/python3 ") + HDS_SOURCE_DIR +
                            "/tests/bench/hds_reference.py check-bundle " + dir + "/bundle " + dir +
                            "/film.pgm " + dir + "/by-bundle/film.json";
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
}

TEST(TrainerCli, a_bundle_keeps_its_changelog_refuses_a_version_it_holds_and_foreign_folders) {
  const auto dir = hds::test::scratch_dir("cli-bundle-versions");
  const auto config = write_config(dir, hds::test::tiny_config(dir + "/run"));
  ASSERT_EQ(run("fit --config " + config + " --set train.epochs=1").exit_code, 0);
  const std::string export_latest =
      "export --checkpoint " + dir + "/run/checkpoints/latest --bundle " + dir + "/bundle";
  ASSERT_EQ(run(export_latest).exit_code, 0);
  const auto again = run(export_latest);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find(dir + "/bundle: the bundle already holds version 0.1.0"),
            std::string::npos)
      << again.output;
  ASSERT_EQ(run(export_latest + " --bundle-version 0.2.0 --changelog 'more epochs'").exit_code, 0);
  const auto metadata = read_json(dir + "/bundle/configs/metadata.json");
  EXPECT_EQ(metadata.at("version"), "0.2.0");
  EXPECT_EQ(metadata.at("changelog").size(), 2u);
  EXPECT_EQ(metadata.at("changelog").at("0.2.0"), "more epochs");

  hds::test::write_text(dir + "/elsewhere/notes.txt", "mine\n");
  const auto foreign =
      run("export --checkpoint " + dir + "/run/checkpoints/latest --bundle " + dir + "/elsewhere");
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_NE(foreign.output.find("holds files but no bundle"), std::string::npos) << foreign.output;
  EXPECT_EQ(hds::test::read_text(dir + "/elsewhere/notes.txt"), "mine\n");
  EXPECT_FALSE(fs::exists(dir + "/elsewhere/configs"));

  // A bundle whose configuration no longer fits its weights is refused by name.
  std::string training = hds::test::read_text(dir + "/bundle/configs/training.pbtxt");
  const size_t blocks = training.find("blocks_per_stage: 1");
  ASSERT_NE(blocks, std::string::npos) << training;
  training.replace(blocks, 19, "blocks_per_stage: 2");
  hds::test::write_text(dir + "/bundle/configs/training.pbtxt", training);
  write_noisy_film(dir + "/a.png", 2);
  const auto misfit =
      run("infer --checkpoint " + dir + "/bundle --out " + dir + "/out " + dir + "/a.png");
  EXPECT_NE(misfit.exit_code, 0);
  EXPECT_NE(misfit.output.find(dir + "/bundle/models/model.pt: holds"), std::string::npos)
      << misfit.output;
}

}  // namespace

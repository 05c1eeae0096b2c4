// End to end: the hds-data-service binary writes a phantom folder, and the folder reader gives
// back exactly what make_phantom + preprocessing give in memory; `bench produce` samples that
// folder through the film cache.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "hds/config/config.h"
#include "hds/data/dataset.h"
#include "hds/data/phantom.h"
#include "hds/data/png_io.h"
#include "hds/data/preprocess.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

using testing::read_lines;

namespace fs = std::filesystem;

// Runs the service with `arguments`, its output going to `log`; returns the exit status.
int run_service(const std::string& arguments, const std::string& log) {
  const std::string command =
      std::string("'") + HDS_DATA_SERVICE_BINARY + "' " + arguments + " > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(DataServiceCli, phantom_folder_reads_back_as_make_phantom_gives) {
  testing::TempDir dir;
  const fs::path out = dir.path() / "phantoms";
  const std::string log = dir.file("log.txt");
  ASSERT_EQ(run_service("phantom --out '" + out.string() +
                            "' --count 6 --seed 7 --rows 128 --cols 64 "
                            "--mass-free-share 0.5",
                        log),
            0)
      << read_all(log);
  EXPECT_NE(read_all(log).find("wrote 6 phantom films"), std::string::npos) << read_all(log);
  for (int index = 0; index < 6; ++index) {
    EXPECT_TRUE(fs::exists(out / "img" / (phantom_id(index) + ".png")));
    EXPECT_TRUE(fs::exists(out / "label" / (phantom_id(index) + ".png")));
  }
  for (const char* list : {"train.txt", "val.txt", "test.txt"})
    EXPECT_TRUE(fs::exists(out / "split" / list)) << list;

  hds::config::DataConfig config;
  config.set_source("folder");
  config.set_root(out.string());
  config.set_image_rows(128);
  config.set_image_cols(64);
  config.set_mean(0);  // identity normalisation: compare preprocessed levels directly
  config.set_std(1);
  const Dataset dataset = load_dataset(config);
  EXPECT_EQ(dataset.train.size(), 4u);  // films 0, 1, 2, 5
  EXPECT_EQ(dataset.val.size(), 1u);
  EXPECT_EQ(dataset.test.size(), 1u);

  PreprocessOptions options;
  options.rows = 128;
  options.cols = 64;
  options.blank_threshold = config.blank_threshold();
  for (const std::vector<Film>* split : {&dataset.train, &dataset.val, &dataset.test}) {
    for (const Film& film : *split) {
      const int index = std::stoi(film.id.substr(std::string("phantom-").size()));
      const PhantomFilm phantom = make_phantom(7, index, 128, 64, 0.5);
      GreyImage image;
      image.rows = phantom.rows;
      image.cols = phantom.cols;
      image.pixels.assign(phantom.image.begin(), phantom.image.end());
      const Film expected = preprocess_film(image, phantom.mask, options, film.id, film.id);
      EXPECT_EQ(film.image, expected.image) << film.id;
      EXPECT_EQ(film.mask, expected.mask) << film.id;
    }
  }
}

TEST(DataServiceCli, bad_command_lines_fail_with_a_message) {
  testing::TempDir dir;
  const std::string log = dir.file("log.txt");
  EXPECT_NE(run_service("", log), 0);
  EXPECT_NE(run_service("shuffle --out x", log), 0);
  EXPECT_NE(read_all(log).find("shuffle"), std::string::npos) << read_all(log);
  EXPECT_NE(run_service("phantom --count 3 --seed 1", log), 0);  // no --out
  EXPECT_NE(read_all(log).find("--out"), std::string::npos) << read_all(log);
  EXPECT_NE(run_service("phantom --out '" + dir.file("p") + "' --count 3 --seed 1 --rows 10", log),
            0);
  EXPECT_NE(read_all(log).find("--rows"), std::string::npos) << read_all(log);
  EXPECT_NE(run_service("phantom --out '" + dir.file("p") + "' --count zero --seed 1", log), 0);
}

TEST(DataServiceCli, unwritable_output_is_reported) {
  testing::TempDir dir;
  testing::write_text(dir.path() / "file", "x");
  const std::string log = dir.file("log.txt");
  EXPECT_EQ(run_service("phantom --out '" + dir.file("file/sub") + "' --count 1 --seed 1", log), 1);
  EXPECT_NE(read_all(log).find(dir.file("file/sub")), std::string::npos) << read_all(log);
}

// Writes a folder of 6 phantom films of 256x128 (4 in the training split) and a configuration
// reading it through a cache in `dir`; returns the configuration's path.
std::string write_tiny_folder_job(const testing::TempDir& dir) {
  const std::string log = dir.file("phantom-log.txt");
  const std::string folder = dir.file("phantoms");
  EXPECT_EQ(
      run_service("phantom --out '" + folder + "' --count 6 --seed 3 --rows 256 --cols 128", log),
      0)
      << read_all(log);
  const std::string config = dir.file("tiny.pbtxt");
  std::ofstream(config) << "data {\n  source: \"folder\"\n  root: \"" << folder
                        << "\"\n  cache_dir: \"" << dir.file("cache")
                        << "\"\n  image_rows: 256\n  image_cols: 128\n  patch_rows: 128\n"
                           "  patch_cols: 128\n}\ntrain { batch_size: 4 }\n";
  return config;
}

// Runs `bench produce` and parses its one line of output.
nlohmann::json run_produce_bench(const std::string& arguments, const std::string& log) {
  EXPECT_EQ(run_service("bench produce " + arguments, log), 0) << read_all(log);
  try {
    return nlohmann::json::parse(read_all(log));
  } catch (const nlohmann::json::exception& error) {
    ADD_FAILURE() << error.what() << " in: " << read_all(log);
    return nlohmann::json::object();
  }
}

TEST(DataServiceCli, bench_produce_reports_rates_per_thread_from_the_film_cache) {
  testing::TempDir dir;
  const std::string config = write_tiny_folder_job(dir);
  const std::string log = dir.file("log.txt");
  const nlohmann::json cold = run_produce_bench(
      "--config '" + config + "' --set train.batch_size=2 --threads 2 --batches 5", log);
  EXPECT_EQ(cold.value("bench", ""), "produce");
  EXPECT_EQ(cold.value("source", ""), "folder");
  EXPECT_EQ(cold.value("films", 0), 4);  // the training split: films 0, 1, 2, 5
  EXPECT_EQ(cold.value("film_rows", 0), 256);
  EXPECT_EQ(cold.value("film_cols", 0), 128);
  EXPECT_EQ(cold.value("patch_rows", 0), 128);
  EXPECT_EQ(cold.value("patch_cols", 0), 128);
  EXPECT_EQ(cold.value("batch_size", 0), 2);  // --set wins over the file
  EXPECT_EQ(cold.value("threads", 0), 2);
  EXPECT_EQ(cold.value("batches_per_thread", 0), 5);
  EXPECT_EQ(cold.value("cache_misses", -1), 6);  // every split is preprocessed and stored
  EXPECT_EQ(cold.value("cache_hits", -1), 0);
  EXPECT_GT(cold.value("load_seconds", 0.0), 0.0);
  EXPECT_GT(cold.value("patches_per_s_per_thread", 0.0), 0.0);
  EXPECT_GT(cold.value("total_patches_per_s", 0.0), 0.0);
  ASSERT_TRUE(cold.contains("thread_patches_per_s")) << cold.dump();
  ASSERT_EQ(cold["thread_patches_per_s"].size(), 2u) << cold.dump();
  for (const auto& rate : cold["thread_patches_per_s"]) EXPECT_GT(rate.get<double>(), 0.0);

  // The second run samples the films the first one cached.
  const nlohmann::json warm = run_produce_bench("--config '" + config + "' --batches 3", log);
  EXPECT_EQ(warm.value("cache_hits", -1), 6) << warm.dump();
  EXPECT_EQ(warm.value("cache_misses", -1), 0) << warm.dump();
  EXPECT_EQ(warm.value("threads", 0), 1);
  EXPECT_EQ(warm.value("batch_size", 0), 4);
  ASSERT_EQ(warm["thread_patches_per_s"].size(), 1u) << warm.dump();
  EXPECT_GT(warm.value("patches_per_s_per_thread", 0.0), 0.0);
}

TEST(DataServiceCli, bench_produce_refuses_bad_arguments_with_a_message) {
  testing::TempDir dir;
  const std::string config = dir.file("empty.pbtxt");
  std::ofstream(config) << "# the paper's job\n";
  const std::string log = dir.file("log.txt");
  for (const char* threads : {"0", "-2", "many", "257"}) {
    EXPECT_EQ(run_service("bench produce --config '" + config + "' --threads " + threads, log),
              105)  // CLI11's exit code for a value that fails its check
        << threads << ": " << read_all(log);
    EXPECT_NE(read_all(log).find("--threads"), std::string::npos)
        << threads << ": " << read_all(log);
  }
  EXPECT_NE(run_service("bench produce --threads 2", log), 0);
  EXPECT_NE(read_all(log).find("--config"), std::string::npos) << read_all(log);
  EXPECT_EQ(run_service("bench produce --config '" + config + "' --set data.patch_rows=100", log),
            2);
  EXPECT_NE(read_all(log).find("data.patch_rows"), std::string::npos) << read_all(log);
}

// The preprocessed films of `config` by id, every split together, with mean 0 and std 1 (identity
// normalisation) so that two sources compare level for level.
std::map<std::string, Film> films_by_id(hds::config::DataConfig config) {
  config.set_mean(0);
  config.set_std(1);
  config.set_use_cache(false);
  const Dataset dataset = load_dataset(config);
  std::map<std::string, Film> films;
  for (const std::vector<Film>* split : {&dataset.train, &dataset.val, &dataset.test})
    for (const Film& film : *split) films.emplace(film.id, film);
  return films;
}

// Runs `export` of the job `config` into `out` with `more` arguments; returns the exit status.
int run_export(const std::string& config, const fs::path& out, const std::string& more,
               const std::string& log) {
  return run_service("export --config '" + config + "' --out '" + out.string() + "' " + more, log);
}

TEST(DataServiceCli, export_writes_a_folder_dataset_that_reads_back_as_the_source_gives) {
  testing::TempDir dir;
  const std::string config = write_tiny_folder_job(dir);
  const std::string log = dir.file("log.txt");
  const fs::path out = dir.path() / "exported";
  ASSERT_EQ(run_export(config, out, "", log), 0) << read_all(log);
  EXPECT_NE(read_all(log).find("exported 6 films"), std::string::npos) << read_all(log);
  // Each film stays in its split.
  for (const char* list : {"train.txt", "val.txt", "test.txt"})
    EXPECT_EQ(read_lines(out / "split" / list),
              read_lines(dir.path() / "phantoms" / "split" / list))
        << list;
  hds::config::DataConfig source = hds::config::load_config(config).data();
  hds::config::DataConfig exported = source;
  exported.set_root(out.string());
  const auto expected = films_by_id(source);
  const auto got = films_by_id(exported);
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [id, film] : expected) {
    ASSERT_EQ(got.count(id), 1u) << id;
    EXPECT_EQ(got.at(id).image, film.image) << id;
    EXPECT_EQ(got.at(id).mask, film.mask) << id;
  }
  // A second export into the same folder would mix two datasets.
  EXPECT_EQ(run_export(config, out, "", log), 1);
  EXPECT_NE(read_all(log).find((out / "split" / "train.txt").string() + ": already exists"),
            std::string::npos)
      << read_all(log);
}

TEST(DataServiceCli, export_of_chosen_films_validates_on_copies_of_them) {
  testing::TempDir dir;
  const std::string config = write_tiny_folder_job(dir);
  const std::string log = dir.file("log.txt");
  const fs::path out = dir.path() / "overfit";
  // phantom-0003 is a validation film of the source: chosen, it becomes a training film.
  ASSERT_EQ(run_export(config, out, "--films phantom-0000,phantom-0003 --validate-on-copies", log),
            0)
      << read_all(log);
  EXPECT_EQ(read_lines(out / "split" / "train.txt"),
            (std::vector<std::string>{"phantom-0000", "phantom-0003"}));
  EXPECT_EQ(read_lines(out / "split" / "val.txt"),
            (std::vector<std::string>{"phantom-0000-copy", "phantom-0003-copy"}));
  EXPECT_TRUE(read_lines(out / "split" / "test.txt").empty());
  hds::config::DataConfig exported = hds::config::load_config(config).data();
  exported.set_root(out.string());
  const auto films = films_by_id(exported);
  ASSERT_EQ(films.size(), 4u);
  EXPECT_EQ(films.at("phantom-0003-copy").image, films.at("phantom-0003").image);
  EXPECT_EQ(films.at("phantom-0003-copy").mask, films.at("phantom-0003").mask);

  // A film the source does not hold is named, with the source.
  EXPECT_EQ(run_export(config, dir.path() / "none", "--films phantom-0000,mdb999", log), 1);
  EXPECT_NE(read_all(log).find("film 'mdb999' is not one of the 6 films of data.source \"folder\""),
            std::string::npos)
      << read_all(log);
  EXPECT_FALSE(fs::exists(dir.path() / "none" / "split" / "train.txt"));
}

// Films written at the training size read back, with nothing done twice, as the source's films
// preprocess: levels within the 8-bit rounding, masks exact, splits kept.
void expect_preprocessed_export_trains_as_its_source(const hds::config::DataConfig& source,
                                                     const fs::path& out) {
  hds::config::DataConfig exported = source;
  exported.set_source("folder");
  exported.set_root(out.string());
  exported.set_breast_region(hds::config::DataConfig::WHOLE_FILM);
  exported.set_blank_threshold(0);
  const auto expected = films_by_id(source);
  const auto got = films_by_id(exported);
  ASSERT_FALSE(got.empty());
  for (const auto& [id, written_film] : got) {
    ASSERT_EQ(expected.count(id), 1u) << id;
    const Film& film = expected.at(id);
    const GreyImage written = read_grey_png((out / "img" / (id + ".png")).string());
    EXPECT_EQ(written.rows, source.image_rows()) << id;
    EXPECT_EQ(written.cols, source.image_cols()) << id;
    EXPECT_EQ(written.max_level, 255) << id;  // 8-bit films stay 8-bit
    ASSERT_EQ(written_film.image.size(), film.image.size()) << id;
    float worst = 0;
    for (size_t i = 0; i < film.image.size(); ++i)
      worst = std::max(worst, std::abs(written_film.image[i] - film.image[i]));
    EXPECT_LE(worst, 0.5f / 255 + 1e-6f) << id;
    EXPECT_GT(worst, 0.f) << id << ": resized levels are not whole 8-bit levels";
    EXPECT_EQ(written_film.mask, film.mask) << id;
    EXPECT_EQ(written_film.has_mass(), film.has_mass()) << id;
  }
}

TEST(DataServiceCli, export_preprocessed_writes_films_at_the_training_size_that_train_alike) {
  testing::TempDir dir;
  const std::string config = write_tiny_folder_job(dir);
  const std::string log = dir.file("log.txt");
  const fs::path out = dir.path() / "small";
  // 256x128 phantoms, breast only, to 128 rows: the rows shrink, the cut columns grow.
  const std::string sizes =
      "--set data.image_rows=128 --set data.breast_region=LARGEST_COMPONENT --preprocessed";
  ASSERT_EQ(run_export(config, out, sizes, log), 0) << read_all(log);
  EXPECT_NE(read_all(log).find("preprocessed to 128x128"), std::string::npos) << read_all(log);
  for (const char* list : {"train.txt", "val.txt", "test.txt"})
    EXPECT_EQ(read_lines(out / "split" / list),
              read_lines(dir.path() / "phantoms" / "split" / list))
        << list;
  hds::config::DataConfig source = hds::config::load_config(config).data();
  source.set_image_rows(128);
  source.set_breast_region(hds::config::DataConfig::LARGEST_COMPONENT);
  expect_preprocessed_export_trains_as_its_source(source, out);
}

// A job on the developer copy of mini-MIAS, uncached, with these more data fields.
std::string write_mini_mias_job(const testing::TempDir& dir, const std::string& data_fields) {
  const std::string config = dir.file("mias.pbtxt");
  std::ofstream(config) << "data {\n  source: \"mini-mias\"\n  root: \"" << HDS_MINI_MIAS_DIR
                        << "\"\n  use_cache: false\n"
                        << data_fields << "}\n";
  return config;
}

TEST(DataServiceCli, export_preprocessed_of_real_mini_mias_films_trains_alike) {
  const fs::path mias = HDS_MINI_MIAS_DIR;
  if (!fs::exists(mias / "Info.txt")) GTEST_SKIP() << "no mini-MIAS copy at " << mias;
  testing::TempDir dir;
  const std::string config = write_mini_mias_job(
      dir, "image_rows: 1024\nimage_cols: 512\nbreast_region: LARGEST_COMPONENT\n");
  const std::string log = dir.file("log.txt");
  const fs::path out = dir.path() / "mias2";
  // mdb005 holds two masses, mdb003 none; both carry a film label the breast region removes.
  ASSERT_EQ(run_export(config, out, "--films mdb005,mdb003 --preprocessed", log), 0)
      << read_all(log);
  hds::config::DataConfig source = hds::config::load_config(config).data();
  source.set_folds(0);
  expect_preprocessed_export_trains_as_its_source(source, out);
}

TEST(DataServiceCli, export_of_real_mini_mias_films_keeps_pixels_and_circles) {
  const fs::path mias = HDS_MINI_MIAS_DIR;
  if (!fs::exists(mias / "Info.txt")) GTEST_SKIP() << "no mini-MIAS copy at " << mias;
  testing::TempDir dir;
  const std::string config = write_mini_mias_job(
      dir, "image_rows: 256\nimage_cols: 128\npatch_rows: 128\npatch_cols: 128\n");
  const std::string log = dir.file("log.txt");
  const fs::path out = dir.path() / "mias3";
  // mdb005 holds two masses, mdb003 none (a normal film), mdb012 one.
  ASSERT_EQ(run_export(config, out, "--films mdb005,mdb003,mdb012", log), 0) << read_all(log);
  // The source's own PNG pixels, unchanged.
  for (const char* id : {"mdb005", "mdb003", "mdb012"}) {
    EXPECT_EQ(read_grey_png((out / "img" / (std::string(id) + ".png")).string()).pixels,
              read_grey_png((mias / "images" / (std::string(id) + ".png")).string()).pixels)
        << id;
  }
  // Read through the folder source, the films preprocess as the mini-mias source gives them.
  hds::config::DataConfig source = hds::config::load_config(config).data();
  source.set_folds(0);
  hds::config::DataConfig exported = source;
  exported.set_source("folder");
  exported.set_root(out.string());
  const auto expected = films_by_id(source);
  for (const auto& [id, film] : films_by_id(exported)) {
    ASSERT_EQ(expected.count(id), 1u) << id;
    EXPECT_EQ(film.image, expected.at(id).image) << id;
    EXPECT_EQ(film.mask, expected.at(id).mask) << id;
    EXPECT_EQ(film.has_mass(), id != "mdb003") << id;
  }
}

}  // namespace
}  // namespace hds::data

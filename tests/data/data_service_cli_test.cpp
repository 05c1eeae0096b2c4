// End to end: the hds-data-service binary writes a phantom folder, and the folder reader gives
// back exactly what make_phantom + preprocessing give in memory.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "hds/data/dataset.h"
#include "hds/data/phantom.h"
#include "hds/data/preprocess.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

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
  ASSERT_EQ(
      run_service("phantom --out '" + out.string() + "' --count 6 --seed 7 --rows 128 --cols 64",
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
      const PhantomFilm phantom = make_phantom(7, index, 128, 64);
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

}  // namespace
}  // namespace hds::data

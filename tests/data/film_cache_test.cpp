// The preprocessing cache: hits and misses by key, damaged entries, concurrent writers from two
// processes, and a full disk.
#include "hds/data/film_cache.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

namespace hds::data {
namespace {
namespace fs = std::filesystem;

Film make_film(int rows, int cols, float base) {
  Film film;
  film.id = "f";
  film.patient = "p";
  film.mass_count = 2;
  film.rows = rows;
  film.cols = cols;
  for (int i = 0; i < rows * cols; ++i) {
    film.image.push_back(base + 0.001f * static_cast<float>(i));
    film.mask.push_back(static_cast<uint8_t>(i % 7 == 0));
  }
  return film;
}

std::string fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("hds-test-cache-" + name);
  fs::remove_all(dir);
  return dir.string();
}

TEST(FilmCache, a_stored_film_comes_back_exactly_under_its_key_only) {
  FilmCache cache(fresh_dir("roundtrip"));
  const auto key = make_cache_key({"image bytes", "annotation", "1024x512 t=0.04"});
  const auto film = make_film(16, 8, 0.25f);
  EXPECT_FALSE(cache.load(key, "f").has_value());
  cache.store(key, film);
  const auto loaded = cache.load(key, "f");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->image, film.image);
  EXPECT_EQ(loaded->mask, film.mask);
  EXPECT_EQ(loaded->rows, 16);
  EXPECT_EQ(loaded->patient, "p");
  EXPECT_EQ(loaded->mass_count, 2);
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 1);
  // Any change of content or parameters is another key.
  EXPECT_FALSE(cache.load(make_cache_key({"image bytes", "annotation", "1024x512 t=0.05"}), "f"));
  EXPECT_FALSE(cache.load(make_cache_key({"image byteS", "annotation", "1024x512 t=0.04"}), "f"));
  EXPECT_FALSE(cache.load(make_cache_key({"image bytesannotation", "", "1024x512 t=0.04"}), "f"));
}

TEST(FilmCache, a_damaged_entry_is_a_miss_and_is_removed) {
  const auto dir = fresh_dir("damaged");
  FilmCache cache(dir);
  const auto key = make_cache_key({"x"});
  cache.store(key, make_film(8, 8, 0.5f));
  const auto path = dir + "/" + key.hex() + ".film";
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x7f');
  }
  EXPECT_FALSE(cache.load(key, "f").has_value());
  EXPECT_FALSE(fs::exists(path));
  cache.store(key, make_film(8, 8, 0.5f));
  fs::resize_file(path, fs::file_size(path) - 3);
  EXPECT_FALSE(cache.load(key, "f").has_value());
}

TEST(FilmCache, two_processes_writing_the_same_entries_never_expose_a_partial_one) {
  const auto dir = fresh_dir("concurrent");
  const auto film = make_film(64, 64, 0.1f);
  const auto key = make_cache_key({"shared"});
  const pid_t child = fork();
  if (child == 0) {
    FilmCache writer(dir);
    for (int i = 0; i < 200; ++i) writer.store(key, film);
    _exit(0);
  }
  FilmCache cache(dir);
  int complete = 0;
  for (int i = 0; i < 200; ++i) {
    cache.store(key, film);
    const auto loaded = cache.load(key, "f");
    ASSERT_TRUE(loaded.has_value()) << "iteration " << i;  // rename is atomic: never partial
    ASSERT_EQ(loaded->image, film.image);
    ++complete;
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(complete, 200);
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().extension(), ".film") << "leftover " << entry.path();
  }
}

TEST(FilmCache, a_full_disk_is_reported_and_leaves_no_temporary_file) {
  const auto dir = fresh_dir("full");
  FilmCache cache(dir);
  rlimit old_limit{};
  getrlimit(RLIMIT_FSIZE, &old_limit);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 1024;  // writes past 1 KiB fail with EFBIG, as a full disk fails with ENOSPC
  setrlimit(RLIMIT_FSIZE, &small);
  std::string error;
  try {
    cache.store(make_cache_key({"big"}), make_film(64, 64, 0.3f));
  } catch (const DataError& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(error.find(dir), std::string::npos) << error;
  EXPECT_TRUE(fs::is_empty(dir));
}

}  // namespace
}  // namespace hds::data

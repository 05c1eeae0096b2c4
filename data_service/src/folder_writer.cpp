#include "hds/data/folder_writer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "hds/data/dataset.h"
#include "hds/data/png_io.h"

namespace hds::data {
namespace {

namespace fs = std::filesystem;

void create_folder(const fs::path& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw DataError(folder.string() + ": cannot create folder: " + error.message());
}

void write_id_list(const fs::path& path, const std::vector<std::string>& ids) {
  std::ofstream out(path);
  for (const std::string& id : ids) out << id << '\n';
  out.close();
  if (!out) throw DataError(path.string() + ": cannot write the id list");
}

}  // namespace

FolderDatasetWriter::FolderDatasetWriter(std::string root) : root_(std::move(root)) {
  const fs::path base(root_);
  if (fs::exists(base / "split" / "train.txt"))
    throw DataError((base / "split" / "train.txt").string() +
                    ": already exists; write the dataset to a new folder");
  for (const char* folder : {"img", "label", "split"}) create_folder(base / folder);
}

void FolderDatasetWriter::add(const std::string& split, const std::string& id,
                              const GreyImage& image, const std::vector<uint8_t>& mask) {
  std::vector<std::string>* ids = split == "train"  ? &train_
                                  : split == "val"  ? &val_
                                  : split == "test" ? &test_
                                                    : nullptr;
  if (ids == nullptr)
    throw std::invalid_argument("FolderDatasetWriter: split '" + split +
                                "': must be train, val or test");
  for (const auto* list : {&train_, &val_, &test_})
    if (std::find(list->begin(), list->end(), id) != list->end())
      throw std::invalid_argument("FolderDatasetWriter: film '" + id + "' is written twice");
  if (mask.size() != image.pixels.size())
    throw std::invalid_argument("FolderDatasetWriter: film '" + id + "' has " +
                                std::to_string(image.pixels.size()) + " pixels but a mask of " +
                                std::to_string(mask.size()));
  const fs::path base(root_);
  write_grey_png((base / "img" / (id + ".png")).string(), image);
  std::vector<uint8_t> levels(mask.size());
  std::transform(mask.begin(), mask.end(), levels.begin(),
                 [](uint8_t m) { return m != 0 ? uint8_t{255} : uint8_t{0}; });
  write_grey_png((base / "label" / (id + ".png")).string(), image.rows, image.cols, levels);
  ids->push_back(id);
}

void FolderDatasetWriter::finish() {
  const fs::path split(fs::path(root_) / "split");
  write_id_list(split / "train.txt", train_);
  write_id_list(split / "val.txt", val_);
  write_id_list(split / "test.txt", test_);
}

int FolderDatasetWriter::count(const std::string& split) const {
  const auto& ids = split == "train" ? train_ : split == "val" ? val_ : test_;
  return static_cast<int>(ids.size());
}

}  // namespace hds::data

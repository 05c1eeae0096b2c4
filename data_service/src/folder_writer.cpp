#include "hds/data/folder_writer.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "hds/common/read_file.h"
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
  std::string text;
  for (const std::string& id : ids) text += id + '\n';
  try {
    hds::common::replace_file(path.string(), text);
  } catch (const hds::common::FileWriteError& e) {
    throw DataError(std::string(e.what()) + " (the id list)");
  }
}

std::invalid_argument unknown_split(const std::string& split) {
  return std::invalid_argument("FolderDatasetWriter: split '" + split +
                               "': must be train, val or test");
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
  const auto ids = ids_.find(split);
  if (ids == ids_.end()) throw unknown_split(split);
  if (written_.count(id) != 0)
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
  ids->second.push_back(id);
  written_.insert(id);
}

void FolderDatasetWriter::finish() {
  for (const auto& [split, ids] : ids_)
    write_id_list(fs::path(root_) / "split" / (split + ".txt"), ids);
}

int FolderDatasetWriter::count(const std::string& split) const {
  const auto ids = ids_.find(split);
  if (ids == ids_.end()) throw unknown_split(split);
  return static_cast<int>(ids->second.size());
}

}  // namespace hds::data

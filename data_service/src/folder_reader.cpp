// The "folder" source, the reference code's layout:
//   <root>/img/<id>.png      grey film, 8- or 16-bit
//   <root>/label/<id>.png    mask of the same size; any non-zero value is a mass (0/1 or 0/255)
//   <root>/split/{train,val,test}.txt   one id per line; train.txt is required, the others not
// An optional <root>/meanstd.txt (8-bit scale) is not read: the statistics come from the
// training split or the configuration (DESIGN §4).
#include <filesystem>
#include <fstream>
#include <map>

#include "film_readers.h"
#include "hds/data/png_io.h"
#include "parallel_for.h"

namespace hds::data::detail {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& text) {
  const char* space = " \t\r\n";
  const size_t first = text.find_first_not_of(space);
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

// The ids listed in `path`, one per line, blank lines ignored. A missing file gives no ids unless
// it is required.
std::vector<std::string> read_id_list(const fs::path& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (!required && !fs::exists(path)) return {};
    throw DataError(path.string() + ": cannot read the id list" +
                    (fs::exists(path) ? "" : " (missing; the training split must be listed)"));
  }
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);)
    if (std::string id = trim(line); !id.empty()) ids.push_back(std::move(id));
  if (in.bad()) throw DataError(path.string() + ": error while reading the id list");
  return ids;
}

// A film listed in two splits would leak test data into training.
void check_disjoint(const std::vector<std::pair<fs::path, std::vector<std::string>>>& lists) {
  std::map<std::string, const fs::path*> owner;
  for (const auto& [path, ids] : lists) {
    for (const std::string& id : ids) {
      auto [it, inserted] = owner.emplace(id, &path);
      if (!inserted)
        throw DataError(path.string() + ": id '" + id + "' is also listed in " +
                        it->second->string() + (*it->second == path ? " (twice)" : ""));
    }
  }
}

std::string size_text(const GreyImage& image) {
  return std::to_string(image.rows) + "x" + std::to_string(image.cols);
}

Film read_film(const fs::path& root, const std::string& id, const PreprocessOptions& options) {
  const std::string image_path = (root / "img" / (id + ".png")).string();
  const std::string mask_path = (root / "label" / (id + ".png")).string();
  const GreyImage image = read_grey_png(image_path);
  const GreyImage mask = read_grey_png(mask_path);
  if (mask.rows != image.rows || mask.cols != image.cols)
    throw DataError(mask_path + " is " + size_text(mask) + " (rows x cols) but " + image_path +
                    " is " + size_text(image) + "; a mask must have its image's size");
  std::vector<uint8_t> is_mass(mask.pixels.size());
  for (size_t i = 0; i < is_mass.size(); ++i) is_mass[i] = mask.pixels[i] != 0 ? 1 : 0;
  return preprocess_film(image, is_mass, options, id, id);
}

std::vector<Film> read_films(const fs::path& root, const std::vector<std::string>& ids,
                             const PreprocessOptions& options) {
  std::vector<Film> films(ids.size());
  parallel_for(ids.size(), [&](size_t i) { films[i] = read_film(root, ids[i], options); });
  return films;
}

}  // namespace

Dataset read_folder_films(const std::string& root_text, const PreprocessOptions& options) {
  if (root_text.empty())
    throw DataError("data.root is empty; the folder source needs the dataset's folder");
  const fs::path root(root_text);
  const fs::path train_list = root / "split" / "train.txt";
  const fs::path val_list = root / "split" / "val.txt";
  const fs::path test_list = root / "split" / "test.txt";
  const std::vector<std::string> train_ids = read_id_list(train_list, true);
  if (train_ids.empty())
    throw DataError(train_list.string() + ": lists no ids; the training split must not be empty");
  const std::vector<std::string> val_ids = read_id_list(val_list, false);
  const std::vector<std::string> test_ids = read_id_list(test_list, false);
  check_disjoint({{train_list, train_ids}, {val_list, val_ids}, {test_list, test_ids}});

  Dataset dataset;
  dataset.train = read_films(root, train_ids, options);
  dataset.val = read_films(root, val_ids, options);
  dataset.test = read_films(root, test_ids, options);
  return dataset;
}

}  // namespace hds::data::detail

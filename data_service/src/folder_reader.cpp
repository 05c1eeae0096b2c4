// The "folder" source, the reference code's layout:
//   <root>/img/<id>.png      grey film, 8- or 16-bit
//   <root>/label/<id>.png    mask of the same size; any non-zero value is a mass (0/1 or 0/255)
//   <root>/split/{train,val,test}.txt   one id per line; train.txt is required, the others not
// An optional <root>/meanstd.txt (8-bit scale) is not read: the statistics come from the
// training split or the configuration (docs/design.md §4). A film's patient is its id; its mass
// count is the number of separate regions of its mask.
#include <filesystem>
#include <fstream>
#include <map>

#include "film_readers.h"
#include "hds/data/png_io.h"
#include "mask_drawing.h"

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

class FolderReader final : public FilmReader {
 public:
  FolderReader(const fs::path& root, uint64_t max_pixels) : root_(root), max_pixels_(max_pixels) {
    const fs::path train_list = root / "split" / "train.txt";
    const fs::path val_list = root / "split" / "val.txt";
    const fs::path test_list = root / "split" / "test.txt";
    films_.train = read_id_list(train_list, true);
    if (films_.train.empty())
      throw DataError(train_list.string() + ": lists no ids; the training split must not be empty");
    films_.val = read_id_list(val_list, false);
    films_.test = read_id_list(test_list, false);
    check_disjoint({{train_list, films_.train}, {val_list, films_.val}, {test_list, films_.test}});
  }

  const FilmList& films() const override { return films_; }

  std::vector<std::string> source_files(const std::string& id) const override {
    return {(root_ / "img" / (id + ".png")).string(), (root_ / "label" / (id + ".png")).string()};
  }

  RawFilm read_film(const std::string& id) const override {
    const std::string image_path = (root_ / "img" / (id + ".png")).string();
    const std::string mask_path = (root_ / "label" / (id + ".png")).string();
    RawFilm film;
    film.id = id;
    film.patient = id;  // the layout has no patients; each film stands alone
    film.image = read_grey_png(image_path, max_pixels_);
    const GreyImage mask = read_grey_png(mask_path, max_pixels_);
    if (mask.rows != film.image.rows || mask.cols != film.image.cols)
      throw DataError(mask_path + " is " + size_text(mask) + " (rows x cols) but " + image_path +
                      " is " + size_text(film.image) + "; a mask must have its image's size");
    film.mask.resize(mask.pixels.size());
    for (size_t i = 0; i < film.mask.size(); ++i) film.mask[i] = mask.pixels[i] != 0 ? 1 : 0;
    film.mass_count = count_regions(film.mask, mask.rows, mask.cols);
    return film;
  }

 private:
  fs::path root_;
  uint64_t max_pixels_;
  FilmList films_;
};

}  // namespace

std::unique_ptr<FilmReader> make_folder_reader(const std::string& root, uint64_t max_pixels) {
  return std::make_unique<FolderReader>(fs::path(root), max_pixels);
}

}  // namespace hds::data::detail

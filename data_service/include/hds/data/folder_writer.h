// Writes datasets in the `folder` layout that the folder source reads (film_reader.h):
//   <root>/img/<id>.png  <root>/label/<id>.png (0 / 255)  <root>/split/{train,val,test}.txt
// Used by `hds-data-service phantom` and `export`. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hds/data/grey_image.h"

namespace hds::data {

class FolderDatasetWriter {
 public:
  // Creates <root>/img, label and split (DataError naming the folder when it cannot). Refuses a
  // root that already holds a split/train.txt: writing into another dataset would mix the two.
  explicit FolderDatasetWriter(std::string root);

  // Writes film `id` of `split` ("train", "val" or "test"): its image (write_grey_png: 8-bit for
  // 8-bit films, else 16-bit) and its mask (rows x cols of the image; non-zero = mass) as 0 / 255.
  // Throws std::invalid_argument for another split name, an id written before or a mask of
  // another size, DataError when a file cannot be written.
  void add(const std::string& split, const std::string& id, const GreyImage& image,
           const std::vector<uint8_t>& mask);

  // Writes the three id lists (an empty file for an empty split). Call once, after the films.
  void finish();

  const std::string& root() const { return root_; }
  // Films written to `split` so far (std::invalid_argument for another split name).
  int count(const std::string& split) const;

 private:
  std::string root_;
  // Each split's ids in the order written, for its id list; the three splits and no other.
  std::map<std::string, std::vector<std::string>> ids_{{"train", {}}, {"val", {}}, {"test", {}}};
  std::set<std::string> written_;  // every split's ids: one film, one split
};

}  // namespace hds::data

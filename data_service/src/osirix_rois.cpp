// OsiriX ROI files (INbreast's AllXML/<id>.xml): the plist structure down to each ROI's points,
// checked strictly, since a misread outline would silently become a wrong mask.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>

#include "hds/data/dataset.h"
#include "hds/data/inbreast.h"
#include "plist.h"

namespace hds::data {
namespace {

using detail::PlistValue;

std::string with_article(PlistValue::Kind kind) {
  const std::string name = detail::plist_kind_name(kind);
  return (name[0] == 'a' || name[0] == 'i' ? "an " : "a ") + name;
}

// Reports structure problems as "<name>:<line>: <problem>", the line of the offending value.
class RoiFileChecker {
 public:
  explicit RoiFileChecker(const std::string& name) : name_(name) {}

  [[noreturn]] void fail(const PlistValue& at, const std::string& problem) const {
    throw DataError(name_ + ":" + std::to_string(at.line) + ": " + problem);
  }

  void expect_kind(const PlistValue& value, PlistValue::Kind kind, const std::string& what) const {
    if (value.kind != kind)
      fail(value, what + " is " + with_article(value.kind) + "; expected " + with_article(kind));
  }

  // dict[key], which must exist and be of `kind`; `where` names the dict in errors.
  const PlistValue& member(const PlistValue& dict, const std::string& key, PlistValue::Kind kind,
                           const std::string& where) const {
    const PlistValue* value = dict.find(key);
    if (value == nullptr) fail(dict, where + " has no key '" + key + "'");
    expect_kind(*value, kind, where + "'s " + key);
    return *value;
  }

 private:
  const std::string& name_;
};

void skip_blanks(const std::string& text, size_t& at) {
  while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) ++at;
}

bool read_char(const std::string& text, size_t& at, char expected) {
  skip_blanks(text, at);
  if (at >= text.size() || text[at] != expected) return false;
  ++at;
  return true;
}

bool read_coordinate(const std::string& text, size_t& at, double& value) {
  skip_blanks(text, at);
  const auto result = std::from_chars(text.data() + at, text.data() + text.size(), value);
  if (result.ec != std::errc() || !std::isfinite(value)) return false;
  at = static_cast<size_t>(result.ptr - text.data());
  return true;
}

// "(x, y)" with optional blanks; x and y finite decimal numbers.
std::optional<RoiPoint> parse_point(const std::string& text) {
  RoiPoint point;
  size_t at = 0;
  if (!read_char(text, at, '(') || !read_coordinate(text, at, point.x) ||
      !read_char(text, at, ',') || !read_coordinate(text, at, point.y) || !read_char(text, at, ')'))
    return std::nullopt;
  skip_blanks(text, at);
  if (at != text.size()) return std::nullopt;
  return point;
}

OsirixRoi parse_roi(const PlistValue& dict, int index, const RoiFileChecker& checker) {
  const std::string where = "ROI " + std::to_string(index);
  checker.expect_kind(dict, PlistValue::Kind::dict, where);
  OsirixRoi roi;
  roi.index = index;
  roi.name = checker.member(dict, "Name", PlistValue::Kind::string, where).text;
  const std::string named = where + " (" + roi.name + ")";
  const PlistValue& count =
      checker.member(dict, "NumberOfPoints", PlistValue::Kind::integer, named);
  const PlistValue& points = checker.member(dict, "Point_px", PlistValue::Kind::array, named);
  if (count.integer != static_cast<long long>(points.items.size()))
    checker.fail(count, named + ": NumberOfPoints is " + std::to_string(count.integer) +
                            " but Point_px holds " + std::to_string(points.items.size()) +
                            " point(s)");
  for (size_t k = 0; k < points.items.size(); ++k) {
    const PlistValue& item = points.items[k];
    const std::string point_name = named + ": Point_px[" + std::to_string(k) + "]";
    checker.expect_kind(item, PlistValue::Kind::string, point_name);
    const std::optional<RoiPoint> point = parse_point(item.text);
    if (!point) checker.fail(item, point_name + " '" + item.text + "' is not \"(x, y)\"");
    roi.points.push_back(*point);
  }
  return roi;
}

}  // namespace

std::vector<OsirixRoi> parse_osirix_rois(const std::string& text, const std::string& name) {
  const RoiFileChecker checker(name);
  const PlistValue top = detail::parse_plist(text, name);
  checker.expect_kind(top, PlistValue::Kind::dict, "the plist's top value");
  const PlistValue& images = checker.member(top, "Images", PlistValue::Kind::array, "the top dict");
  if (images.items.empty()) checker.fail(images, "Images is an empty array; expected the film");
  const PlistValue& image = images.items.front();
  checker.expect_kind(image, PlistValue::Kind::dict, "Images[0]");
  const PlistValue& rois = checker.member(image, "ROIs", PlistValue::Kind::array, "Images[0]");
  // NumberOfROIs is optional, but when given it must agree: a disagreement means a damaged file.
  if (const PlistValue* stated = image.find("NumberOfROIs")) {
    checker.expect_kind(*stated, PlistValue::Kind::integer, "Images[0]'s NumberOfROIs");
    if (stated->integer != static_cast<long long>(rois.items.size()))
      checker.fail(*stated, "Images[0]: NumberOfROIs is " + std::to_string(stated->integer) +
                                " but ROIs holds " + std::to_string(rois.items.size()));
  }
  std::vector<OsirixRoi> result;
  for (size_t i = 0; i < rois.items.size(); ++i)
    result.push_back(parse_roi(rois.items[i], static_cast<int>(i), checker));
  return result;
}

bool is_inbreast_mass(const OsirixRoi& roi) {
  // Case and surrounding blanks are forgiven: a mass missed over spelling would silently become
  // background.
  std::string name = roi.name;
  name.erase(0, name.find_first_not_of(" \t"));
  name.erase(name.find_last_not_of(" \t") + 1);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name == "mass";
}

}  // namespace hds::data

// Parsing of mini-MIAS's Info.txt: strict about the rows, tolerant of the prose around them.
#include <algorithm>
#include <charconv>
#include <sstream>

#include "hds/data/dataset.h"
#include "hds/data/mini_mias.h"

namespace hds::data {
namespace {

// Coordinates beyond this are not a mammogram's; the cap also keeps circle arithmetic in range.
constexpr int kMaxCoordinate = 1 << 20;

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream stream(line);
  std::vector<std::string> words;
  for (std::string word; stream >> word;) words.push_back(word);
  return words;
}

bool is_film_id(const std::string& word) {
  if (word.size() != 6 || word.compare(0, 3, "mdb") != 0) return false;
  for (size_t i = 3; i < word.size(); ++i)
    if (word[i] < '0' || word[i] > '9') return false;
  return true;
}

bool is_one_of(const std::string& word, std::initializer_list<const char*> choices) {
  for (const char* choice : choices)
    if (word == choice) return true;
  return false;
}

// Reports problems of one row as "<name>:<line>: <problem>".
class RowParser {
 public:
  RowParser(const std::string& name, int line) : name_(name), line_(line) {}

  MiasAnnotation parse(const std::vector<std::string>& words) const {
    MiasAnnotation row;
    row.line = line_;
    if (!is_film_id(words[0]))
      fail("film id '" + words[0] + "' is not of the form mdbNNN (three digits)");
    row.film_id = words[0];
    if (words.size() < 3) fail(row.film_id + ": expected 'id tissue class [severity x y radius]'");
    if (!is_one_of(words[1], {"F", "G", "D"}))
      fail(row.film_id + ": tissue '" + words[1] + "' is not F, G or D");
    row.tissue = words[1][0];
    if (!is_one_of(words[2], {"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM"}))
      fail(row.film_id + ": class '" + words[2] +
           "' is not one of CALC CIRC SPIC MISC ARCH ASYM NORM");
    row.abnormality = words[2];
    if (row.abnormality == "NORM") {
      if (words.size() != 3) fail(row.film_id + ": a NORM row has no severity or coordinates");
      return row;
    }
    if (words.size() < 4 || !is_one_of(words[3], {"B", "M"}))
      fail(row.film_id + ": " + row.abnormality + " needs a severity B or M after the class");
    row.severity = words[3][0];
    parse_centre(words, row);
    return row;
  }

 private:
  // Nothing, "*NOTE 3*" (Info.txt's note that coordinates were omitted), or x y radius.
  void parse_centre(const std::vector<std::string>& words, MiasAnnotation& row) const {
    if (words.size() == 4 || words[4].rfind("*NOTE", 0) == 0) return;
    if (words.size() != 7)
      fail(row.film_id + ": expected x y radius after the severity, found " +
           std::to_string(words.size() - 4) + " word(s)");
    row.x = coordinate(words[4], "x", row.film_id);
    row.y = coordinate(words[5], "y", row.film_id);
    row.radius = coordinate(words[6], "radius", row.film_id);
    if (row.radius == 0) fail(row.film_id + ": radius must be positive");
    row.has_centre = true;
  }

  int coordinate(const std::string& word, const char* what, const std::string& film) const {
    int value = -1;
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (error != std::errc() || end != word.data() + word.size() || value < 0 ||
        value > kMaxCoordinate)
      fail(film + ": " + what + " '" + word + "' is not an integer in 0.." +
           std::to_string(kMaxCoordinate));
    return value;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError(name_ + ":" + std::to_string(line_) + ": " + problem);
  }

  const std::string& name_;
  int line_;
};

}  // namespace

std::vector<MiasAnnotation> parse_mias_info(const std::string& text, const std::string& name) {
  std::vector<MiasAnnotation> rows;
  std::istringstream lines(text);
  int line_number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_number;
    const std::vector<std::string> words = split_words(line);
    if (words.empty() || words[0].rfind("mdb", 0) != 0) continue;  // prose
    rows.push_back(RowParser(name, line_number).parse(words));
  }
  return rows;
}

bool is_mias_mass(const MiasAnnotation& annotation) {
  return is_one_of(annotation.abnormality, {"CIRC", "SPIC", "MISC"});
}

bool is_mias_other_abnormality(const MiasAnnotation& annotation) {
  return is_one_of(annotation.abnormality, {"CALC", "ARCH", "ASYM"});
}

std::string mias_patient(const std::string& film_id) {
  if (!is_film_id(film_id))
    throw DataError(film_id + ": not a mini-MIAS film id (mdbNNN); cannot find its patient");
  const int number = std::stoi(film_id.substr(3));
  const std::string patient = std::to_string((number + 1) / 2);
  return "mias-" + std::string(3 - std::min<size_t>(3, patient.size()), '0') + patient;
}

}  // namespace hds::data

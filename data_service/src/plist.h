// A small, strict reader of Apple XML property lists: the subset OsiriX writes (dict, array, key,
// string, integer, real, true, false). Anything else is refused with the file and line, so a file
// that is not what we expect is never half-read. Thread-safe (no shared state).
#pragma once

#include <string>
#include <vector>

namespace hds::data::detail {

struct PlistValue {
  enum class Kind { dict, array, string, integer, real, boolean };
  Kind kind = Kind::string;
  int line = 0;      // 1-based line where the value's element starts
  std::string text;  // a string's characters, entities decoded
  long long integer = 0;
  double real = 0;
  bool boolean = false;
  std::vector<std::string> keys;  // a dict's keys, keys[i] naming items[i]
  std::vector<PlistValue> items;  // a dict's values or an array's elements

  // A dict's value for `key`, or nullptr.
  const PlistValue* find(const std::string& key) const;
};

// "dict", "array", "string", "integer", "real" or "boolean".
const char* plist_kind_name(PlistValue::Kind kind);

// Parses an XML plist document (an optional XML declaration, DOCTYPE and comments, then <plist>
// holding one value). Throws DataError "<name>:<line>: <problem>".
PlistValue parse_plist(const std::string& text, const std::string& name);

}  // namespace hds::data::detail

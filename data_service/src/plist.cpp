#include "plist.h"

#include <charconv>
#include <set>
#include <utility>

#include "hds/data/dataset.h"

namespace hds::data::detail {
namespace {

// Far deeper than any OsiriX file (7 levels); the cap keeps a hostile file from exhausting the
// stack.
constexpr int kMaxDepth = 64;

struct Tag {
  std::string name;
  bool closing = false;       // </name>
  bool self_closing = false;  // <name/>
  int line = 0;
};

std::string describe(const Tag& tag) {
  return std::string(tag.closing ? "</" : "<") + tag.name + (tag.self_closing ? "/>" : ">");
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

void append_utf8(std::string& out, unsigned long code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

class PlistParser {
 public:
  PlistParser(const std::string& text, const std::string& name) : text_(text), name_(name) {}

  PlistValue document() {
    if (starts_with("\xEF\xBB\xBF")) advance(3);  // UTF-8 byte-order mark
    skip_prolog();
    if (at_end()) fail("not a plist: the file holds no XML element");
    if (peek() != '<') fail("not a plist: text before the first element");
    const Tag root = read_tag();
    if (root.closing || root.name != "plist")
      fail("not a plist: the root element is " + describe(root) + ", expected <plist>");
    if (root.self_closing) fail("not a plist: <plist/> holds no value");
    const Tag inner = next_tag("<plist>");
    if (inner.closing) fail("<plist> holds no value");
    PlistValue value = parse_value(inner, 1);
    const Tag end = next_tag("<plist>");
    if (!end.closing || end.name != "plist")
      fail("expected </plist> after the plist's one value, found " + describe(end));
    skip_prolog();
    if (!at_end()) fail("unexpected content after </plist>");
    return value;
  }

 private:
  // ---- characters ----

  bool at_end() const { return position_ >= text_.size(); }
  char peek() const { return text_[position_]; }
  bool starts_with(const char* prefix) const {
    return text_.compare(position_, std::char_traits<char>::length(prefix), prefix) == 0;
  }
  char get() {
    if (at_end()) fail("the file ends in the middle of an element");
    const char c = text_[position_++];
    if (c == '\n') ++line_;
    return c;
  }
  void advance(size_t count) {
    for (size_t i = 0; i < count; ++i) get();
  }
  void skip_space() {
    while (!at_end() && is_space(peek())) get();
  }
  // Skips up to and including `terminator`; `what` names the construct in the error.
  void skip_past(const char* terminator, const char* what) {
    while (!starts_with(terminator)) {
      if (at_end()) fail(std::string("the file ends inside ") + what);
      get();
    }
    advance(std::char_traits<char>::length(terminator));
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError(name_ + ":" + std::to_string(line_) + ": " + problem);
  }

  // ---- markup ----

  // Whitespace, comments, processing instructions and the DOCTYPE declaration.
  void skip_prolog() {
    for (;;) {
      skip_space();
      if (starts_with("<?")) {
        skip_past("?>", "a processing instruction");
      } else if (starts_with("<!--")) {
        skip_past("-->", "a comment");
      } else if (starts_with("<!DOCTYPE")) {
        while (!at_end() && peek() != '>') {
          if (peek() == '[') fail("a DOCTYPE with an internal subset is not supported");
          get();
        }
        skip_past(">", "the DOCTYPE declaration");
      } else {
        return;
      }
    }
  }

  // The next tag inside `parent`, after whitespace and comments.
  Tag next_tag(const std::string& parent) {
    for (;;) {
      skip_space();
      if (at_end()) fail("the file ends inside " + parent);
      if (!starts_with("<!--")) break;
      skip_past("-->", "a comment");
    }
    if (peek() != '<') fail("unexpected text inside " + parent);
    return read_tag();
  }

  std::string read_name() {
    if (at_end() || !is_name_start(peek())) fail("expected an element or attribute name");
    std::string name;
    while (!at_end() && is_name_char(peek())) name += get();
    return name;
  }

  // At '<': reads "<name attr='v' ...>", "<name/>" or "</name>". Attribute values are ignored.
  Tag read_tag() {
    Tag tag;
    tag.line = line_;
    get();  // '<'
    if (!at_end() && peek() == '/') {
      get();
      tag.closing = true;
    }
    tag.name = read_name();
    for (;;) {
      skip_space();
      if (at_end()) fail("the file ends inside " + describe(tag));
      if (peek() == '>') {
        get();
        return tag;
      }
      if (tag.closing) fail("expected '>' to end " + describe(tag));
      if (peek() == '/') {
        get();
        if (at_end() || get() != '>') fail("expected '>' after '/' in <" + tag.name);
        tag.self_closing = true;
        return tag;
      }
      skip_attribute();
    }
  }

  void skip_attribute() {
    read_name();
    skip_space();
    if (get() != '=') fail("expected '=' after an attribute name");
    skip_space();
    const char quote = get();
    if (quote != '"' && quote != '\'') fail("expected a quoted attribute value");
    for (char c = get(); c != quote; c = get())
      if (c == '<') fail("'<' inside an attribute value");
  }

  // ---- values ----

  PlistValue parse_value(const Tag& tag, int depth) {
    if (depth > kMaxDepth) fail("values nested more than 64 deep");
    if (tag.closing) fail("unexpected " + describe(tag));
    PlistValue value;
    value.line = tag.line;
    if (tag.name == "dict") {
      parse_dict(tag, depth, value);
    } else if (tag.name == "array") {
      parse_array(tag, depth, value);
    } else if (tag.name == "string") {
      value.kind = PlistValue::Kind::string;
      value.text = content(tag);
    } else if (tag.name == "integer") {
      value.kind = PlistValue::Kind::integer;
      value.text = content(tag);
      value.integer = parse_number<long long>(value.text, "integer");
    } else if (tag.name == "real") {
      value.kind = PlistValue::Kind::real;
      value.text = content(tag);
      value.real = parse_number<double>(value.text, "real");
    } else if (tag.name == "true" || tag.name == "false") {
      value.kind = PlistValue::Kind::boolean;
      value.boolean = tag.name == "true";
      if (!content(tag).empty()) fail("<" + tag.name + "> must be empty");
    } else if (tag.name == "key") {
      fail("<key> outside a <dict>");
    } else {
      fail("<" + tag.name +
           "> is not a plist value this reader accepts (dict, array, string, integer, real, "
           "true, false)");
    }
    return value;
  }

  void parse_dict(const Tag& tag, int depth, PlistValue& dict) {
    dict.kind = PlistValue::Kind::dict;
    if (tag.self_closing) return;
    std::set<std::string> seen;
    for (;;) {
      const Tag key_tag = next_tag("<dict>");
      if (key_tag.closing) {
        if (key_tag.name != "dict") fail("expected </dict>, found " + describe(key_tag));
        return;
      }
      if (key_tag.name != "key") fail("expected <key> in <dict>, found " + describe(key_tag));
      std::string key = content(key_tag);
      if (!seen.insert(key).second) fail("key '" + key + "' appears twice in one <dict>");
      const Tag value_tag = next_tag("<dict>");
      if (value_tag.closing) fail("key '" + key + "' has no value");
      dict.items.push_back(parse_value(value_tag, depth + 1));
      dict.keys.push_back(std::move(key));
    }
  }

  void parse_array(const Tag& tag, int depth, PlistValue& array) {
    array.kind = PlistValue::Kind::array;
    if (tag.self_closing) return;
    for (;;) {
      const Tag item = next_tag("<array>");
      if (item.closing) {
        if (item.name != "array") fail("expected </array>, found " + describe(item));
        return;
      }
      array.items.push_back(parse_value(item, depth + 1));
    }
  }

  // The character data of `tag` up to its closing tag, entities decoded; "" for <tag/>.
  std::string content(const Tag& tag) {
    std::string text;
    if (tag.self_closing) return text;
    for (;;) {
      if (at_end()) fail("the file ends inside " + describe(tag));
      if (peek() == '&') {
        decode_entity(text);
      } else if (starts_with("<!--")) {
        skip_past("-->", "a comment");
      } else if (starts_with("<![CDATA[")) {
        advance(9);
        while (!starts_with("]]>")) text += get();
        advance(3);
      } else if (peek() == '<') {
        const Tag end = read_tag();
        if (!end.closing || end.name != tag.name)
          fail("expected </" + tag.name + ">, found " + describe(end));
        return text;
      } else {
        text += get();
      }
    }
  }

  // At '&': appends the character of &amp; &lt; &gt; &quot; &apos; &#N; or &#xH;.
  void decode_entity(std::string& out) {
    get();  // '&'
    std::string entity;
    while (!at_end() && peek() != ';' && entity.size() < 10) entity += get();
    if (at_end() || get() != ';') fail("unterminated character reference '&" + entity + "'");
    static const std::pair<const char*, char> kNamed[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (const auto& [named, character] : kNamed) {
      if (entity == named) {
        out += character;
        return;
      }
    }
    if (entity.size() < 2 || entity[0] != '#')
      fail("unknown character reference '&" + entity + ";'");
    append_utf8(out, code_point(entity));
  }

  unsigned long code_point(const std::string& entity) const {
    const bool hex = entity[1] == 'x';
    const char* begin = entity.data() + (hex ? 2 : 1);
    const char* end = entity.data() + entity.size();
    unsigned long code = 0;
    const auto result = std::from_chars(begin, end, code, hex ? 16 : 10);
    if (begin == end || result.ec != std::errc() || result.ptr != end || code == 0 ||
        code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      fail("invalid character reference '&" + entity + ";'");
    return code;
  }

  template <class Number>
  Number parse_number(const std::string& text, const char* element) const {
    Number number{};
    const char* end = text.data() + text.size();
    const auto result = std::from_chars(text.data(), end, number);
    if (text.empty() || result.ec != std::errc() || result.ptr != end)
      fail("<" + std::string(element) + "> '" + text + "' is not a number of that type");
    return number;
  }

  const std::string& text_;
  const std::string& name_;
  size_t position_ = 0;
  int line_ = 1;
};

}  // namespace

const PlistValue* PlistValue::find(const std::string& key) const {
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) return &items[i];
  return nullptr;
}

const char* plist_kind_name(PlistValue::Kind kind) {
  switch (kind) {
    case PlistValue::Kind::dict:
      return "dict";
    case PlistValue::Kind::array:
      return "array";
    case PlistValue::Kind::string:
      return "string";
    case PlistValue::Kind::integer:
      return "integer";
    case PlistValue::Kind::real:
      return "real";
    case PlistValue::Kind::boolean:
      return "boolean";
  }
  return "value";
}

PlistValue parse_plist(const std::string& text, const std::string& name) {
  return PlistParser(text, name).document();
}

}  // namespace hds::data::detail

// The text format: parsing with line numbers and field paths in errors, --set overrides, and
// printing with every field written.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <sstream>

#include "config_internal.h"
#include "hds/common/read_file.h"
#include "hds/config/config.h"

namespace hds::config {
namespace {

namespace pb = google::protobuf;
using detail::AppliedOverride;
using detail::Origin;
using pb::TextFormat;

// Keeps the text-format parser's errors (0-based lines) instead of logging them.
class ErrorList : public pb::io::ErrorCollector {
 public:
  struct Error {
    int line;
    int column;
    std::string message;
  };
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back({line, column, message});
  }
  std::vector<Error> errors;
};

// The field path at (line, column) of `text`, rebuilt from the tokens before it: the parser's
// messages say what is wrong ("Expected integer") but not in which field.
std::string field_path_at(const std::string& text, int line, int column) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  ErrorList ignored;  // the parser reports the same problems
  pb::io::Tokenizer tokenizer(&input, &ignored);
  // As TextFormat's own parser tokenizes.
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_allow_f_after_float(true);
  tokenizer.set_require_space_after_number(false);
  tokenizer.set_allow_multiline_strings(true);
  std::vector<pb::io::Tokenizer::Token> tokens;
  while (tokenizer.Next()) tokens.push_back(tokenizer.current());

  std::vector<std::string> open;  // message fields whose braces enclose the position
  std::string current;            // the last field name before the position
  bool at_end = true;             // the problem is the end of the text (an unclosed brace)
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const pb::io::Tokenizer::Token& token = tokens[i];
    if (std::make_pair(token.line, token.column) >= std::make_pair(line, column)) {
      at_end = false;
      break;
    }
    const std::string next = i + 1 < tokens.size() ? tokens[i + 1].text : "";
    if (token.type == pb::io::Tokenizer::TYPE_IDENTIFIER &&
        (next == ":" || next == "{" || next == "<")) {
      current = token.text;
    } else if (token.text == "{" || token.text == "<") {
      open.push_back(current);
      current.clear();
    } else if ((token.text == "}" || token.text == ">") && !open.empty()) {
      open.pop_back();
      current.clear();
    }
  }
  if (!current.empty() && !at_end) open.push_back(current);
  std::string path;
  for (const std::string& name : open) path += (path.empty() ? "" : ".") + name;
  return path;
}

Config parse_text(const std::string& text, const std::string& source_name,
                  TextFormat::ParseInfoTree* tree) {
  TextFormat::Parser parser;
  ErrorList errors;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(tree);
  Config config;
  if (parser.ParseFromString(text, &config)) return config;

  std::string message;
  for (const ErrorList::Error& error : errors.errors) {
    const std::string path = field_path_at(text, error.line, error.column);
    message += (message.empty() ? "" : "\n") + source_name + ":" + std::to_string(error.line + 1) +
               ":" + std::to_string(error.column + 1) + ": " + (path.empty() ? "" : path + ": ") +
               error.message;
  }
  if (message.empty()) message = source_name + ": not a valid configuration";
  throw ConfigError(message);
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::string text_format_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Applies "a.b.c=value": the target is cleared (a list or message is replaced, not appended to)
// and the value parsed by the text-format parser, so protobuf checks its type.
AppliedOverride apply_override(const std::string& override_text, Config& config) {
  const std::string where = "--set " + override_text + ": ";
  const auto equals = override_text.find('=');
  if (equals == std::string::npos) {
    throw ConfigError(where + "expected field.path=value, e.g. train.epochs=5");
  }
  const std::string path = trim(override_text.substr(0, equals));
  std::string value = trim(override_text.substr(equals + 1));

  // Resolve the path on the schema.
  std::vector<const pb::FieldDescriptor*> fields;
  const pb::Descriptor* descriptor = Config::descriptor();
  std::stringstream components(path);
  std::string component;
  std::string walked;
  while (std::getline(components, component, '.')) {
    if (descriptor == nullptr) {
      throw ConfigError(where + walked + " is not a message, it has no field \"" + component +
                        "\"");
    }
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(component);
    walked += (walked.empty() ? "" : ".") + component;
    if (field == nullptr) {
      throw ConfigError(where + walked + ": no such field (" + descriptor->full_name() +
                        " has no field \"" + component + "\")");
    }
    if (field->is_repeated() && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      throw ConfigError(where + walked + ": repeated messages cannot be overridden");
    }
    fields.push_back(field);
    descriptor = field->message_type();
  }
  if (fields.empty() || path.back() == '.') {
    throw ConfigError(where + "expected field.path=value, e.g. train.epochs=5");
  }

  // Strings need no quotes on the command line.
  const pb::FieldDescriptor* target = fields.back();
  if (target->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING && !target->is_repeated() &&
      (value.empty() || (value.front() != '"' && value.front() != '\''))) {
    value = text_format_string(value);
  }

  // Parse "a { b { c: value } }" on its own, so nothing but the target can be set.
  std::string snippet;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) snippet += fields[i]->name() + " { ";
  snippet += target->name() + ": " + value;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) snippet += " }";
  TextFormat::Parser parser;
  ErrorList errors;
  parser.RecordErrorsTo(&errors);
  Config piece;
  const bool parsed = parser.ParseFromString(snippet, &piece);
  if (!parsed) {
    throw ConfigError(where + path + ": " +
                      (errors.errors.empty() ? "invalid value" : errors.errors.front().message));
  }
  // A value such as "5 } model { heads: 1" must not set other fields.
  const pb::Message* level = &piece;
  for (const pb::FieldDescriptor* field : fields) {
    std::vector<const pb::FieldDescriptor*> set;
    level->GetReflection()->ListFields(*level, &set);
    if (set.size() != 1 || set.front() != field) {
      throw ConfigError(where + path + ": the value must not set other fields");
    }
    if (field != target) level = &level->GetReflection()->GetMessage(*level, field);
  }

  pb::Message* parent = &config;
  for (std::size_t i = 0; i + 1 < fields.size(); ++i) {
    parent = parent->GetReflection()->MutableMessage(parent, fields[i]);
  }
  parent->GetReflection()->ClearField(parent, target);
  config.MergeFrom(piece);
  return {path, override_text};
}

}  // namespace

Config parse_config(const std::string& text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  TextFormat::ParseInfoTree tree;
  Config config = parse_text(text, source_name, &tree);
  Origin origin{source_name, &tree, {}};
  for (const std::string& override_text : overrides) {
    origin.overrides.push_back(apply_override(override_text, config));
  }
  detail::complete(config);
  detail::validate_with_origin(config, &origin);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::string text;
  try {
    text = hds::common::read_whole_file(path, kMaxConfigBytes);
  } catch (const hds::common::FileReadError& error) {
    throw ConfigError(error.what());
  }
  return parse_config(text, path, overrides);
}

Config load_config_or_paper(const std::string& path, const std::vector<std::string>& overrides) {
  return path.empty() ? parse_config("", "<paper defaults>", overrides)
                      : load_config(path, overrides);
}

std::string to_text(const Config& config) {
  Config full = config;
  detail::complete(full);  // what the loader would make of it, every field explicit
  TextFormat::Printer printer;
  printer.SetUseShortRepeatedPrimitives(true);  // "widths: [16, 32, ...]", one line per list
  std::string text;
  printer.PrintToString(full, &text);
  return text;
}

}  // namespace hds::config

//===- RuleParser.cpp - Parse and match KTransformers rule files ----------===//
//
// yaml-cpp throws; everything is caught here and turned into a Diagnostic.
// Diagnostics point at the offending key: a rule's keys are checked strictly
// (an unknown key is an error, where upstream silently ignores it), and
// everything that upstream would only find while injecting (bad regex,
// unknown class, bad device) is reported at parse time.
//
//===----------------------------------------------------------------------===//

#include "YamlToJson.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

using namespace kt::rules;
using namespace kt::rules::detail;
using nlohmann::json;

std::string Diagnostic::str() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0)
      out += ":" + std::to_string(column);
  }
  return out + ": error: " + message;
}

int Rule::lineOfKwarg(std::string_view key) const {
  auto it = kwargLines.find(std::string(key));
  if (it != kwargLines.end() && it->second > 0)
    return it->second;
  // "transfer_map.30" falls back to "transfer_map".
  size_t dot = key.find('.');
  if (dot != std::string_view::npos)
    return lineOfKwarg(key.substr(0, dot));
  return replaceClassLine > 0 ? replaceClassLine : line;
}

namespace {

/// Thrown inside the parser only; parseString turns it into a Diagnostic.
struct RuleError {
  int line;
  std::string message;
};

int lineOf(const YAML::Mark &mark) { return mark.line < 0 ? 0 : mark.line + 1; }

/// `line` (1-based) when it lies inside a rule; when it is past the end of
/// `text` or starts a new sequence entry ("- "), the last line before it
/// that holds content (not blank, not only a comment).
int lastContentLineBefore(const std::string &text, int line) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  auto trimmed = [](const std::string &l) {
    size_t b = l.find_first_not_of(" \t\r");
    return b == std::string::npos ? std::string() : l.substr(b);
  };
  bool pastEnd = line < 1 || line > static_cast<int>(lines.size()) ||
                 trimmed(lines[line - 1]).empty();
  bool newEntry = !pastEnd && trimmed(lines[line - 1]).rfind("- ", 0) == 0;
  if (!pastEnd && !newEntry)
    return line;
  for (int l = std::min<int>(line, lines.size() + 1) - 1; l >= 1; --l) {
    std::string t = trimmed(lines[l - 1]);
    if (!t.empty() && t[0] != '#')
      return l;
  }
  return line;
}
int lineOf(const YAML::Node &node) { return lineOf(node.Mark()); }

[[noreturn]] void fail(int line, std::string message) {
  throw RuleError{line, std::move(message)};
}

std::string describe(const YAML::Node &node) {
  switch (node.Type()) {
  case YAML::NodeType::Map:
    return "a mapping";
  case YAML::NodeType::Sequence:
    return "a sequence";
  case YAML::NodeType::Scalar:
    return "'" + node.Scalar() + "'";
  default:
    return "nothing";
  }
}

/// One `key: value` entry of a mapping, with the key's line.
struct Entry {
  std::string key;
  int line;
  YAML::Node value;
};

/// The entries of a mapping, in order; keys must be unique scalars.
std::vector<Entry> entries(const YAML::Node &map, std::string_view what) {
  std::vector<Entry> out;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    int line = lineOf(it->first);
    if (!it->first.IsScalar())
      fail(line, "keys of " + std::string(what) + " must be plain names");
    std::string key = it->first.Scalar();
    if (!seen.insert(key).second)
      fail(line, "duplicate key '" + key + "' in " + std::string(what));
    out.push_back({key, line, it->second});
  }
  return out;
}

/// A scalar that PyYAML would load as a str.
std::string stringValue(const Entry &e, std::string_view what) {
  if (e.value.IsScalar()) {
    json value = scalarToJson(e.value);
    if (value.is_string())
      return value.get<std::string>();
  }
  fail(e.line,
       std::string(what) + " must be a string, got " + describe(e.value));
}

void parseMatch(Rule &r, const Entry &match) {
  if (!match.value.IsMap())
    fail(match.line, "'match' must be a mapping with 'name' and/or 'class', "
                     "got " +
                         describe(match.value));
  for (const Entry &e : entries(match.value, "match")) {
    if (e.key == "name") {
      std::string pattern = stringValue(e, "match.name");
      auto compiled = NameRegex::compile(pattern);
      if (auto *err = std::get_if<std::string>(&compiled))
        fail(e.line, "invalid regular expression '" + pattern +
                         "' in match.name: " + *err);
      r.namePattern = pattern;
      r.nameRegex = std::get<0>(compiled);
      r.nameLine = e.line;
    } else if (e.key == "class") {
      std::string cls = stringValue(e, "match.class");
      if (!isKnownClass(cls))
        fail(e.line, "unknown class '" + cls + "' in match.class");
      r.matchClass = cls;
      r.matchClassLine = e.line;
    } else {
      fail(e.line, "unknown key '" + e.key +
                       "' in match (expected 'name' and/or 'class')");
    }
  }
  if (!r.namePattern && !r.matchClass)
    fail(match.line, "'match' needs at least one of 'name' and 'class'");
}

void parseReplace(Rule &r, const Entry &replace) {
  if (!replace.value.IsMap())
    fail(replace.line, "'replace' must be a mapping with 'class' and "
                       "optional 'kwargs', got " +
                           describe(replace.value));
  r.replaceClassLine = replace.line;
  for (const Entry &e : entries(replace.value, "replace")) {
    if (e.key == "class") {
      r.replaceClass = stringValue(e, "replace.class");
      r.replaceClassLine = e.line;
    } else if (e.key == "kwargs") {
      if (e.value.IsNull())
        continue;
      if (!e.value.IsMap())
        fail(e.line,
             "replace.kwargs must be a mapping, got " + describe(e.value));
      auto kwargs = yamlToJson(e.value);
      if (auto *err = std::get_if<YamlValueError>(&kwargs))
        fail(lineOf(err->mark), "in replace.kwargs: " + err->message);
      r.kwargs = std::move(std::get<json>(kwargs));
      for (auto it = e.value.begin(); it != e.value.end(); ++it) {
        std::string key = keyToString(scalarToJson(it->first));
        r.kwargLines[key] = lineOf(it->first);
        if (!it->second.IsMap())
          continue;
        for (auto sub = it->second.begin(); sub != it->second.end(); ++sub)
          if (sub->first.IsScalar())
            r.kwargLines[key + "." + keyToString(scalarToJson(sub->first))] =
                lineOf(sub->first);
      }
    } else {
      fail(e.line, "unknown key '" + e.key +
                       "' in replace (expected 'class' and 'kwargs')");
    }
  }
  if (auto err = checkReplace(r.replaceClass, r.kwargs))
    fail(err->key.empty() ? r.replaceClassLine : r.lineOfKwarg(err->key),
         err->message);
}

Rule parseRule(const YAML::Node &node, size_t index) {
  Rule r;
  r.index = index;
  r.line = lineOf(node);
  if (!node.IsMap())
    fail(r.line, "rule " + std::to_string(index) +
                     " must be a mapping with 'match' and 'replace', got " +
                     describe(node));
  std::optional<Entry> match, replace;
  for (Entry &e : entries(node, "rule")) {
    if (e.key == "match") {
      match = e;
    } else if (e.key == "replace") {
      replace = e;
    } else if (e.key == "recursive") {
      json value = e.value.IsScalar() ? scalarToJson(e.value) : json();
      if (!value.is_boolean())
        fail(e.line,
             "'recursive' must be true or false, got " + describe(e.value));
      r.recursive = value.get<bool>();
      r.recursiveLine = e.line;
    } else {
      fail(e.line, "unknown key '" + e.key +
                       "' in rule (expected 'match', 'replace', "
                       "'recursive')");
    }
  }
  if (!match)
    fail(r.line, "rule " + std::to_string(index) + " has no 'match'");
  parseMatch(r, *match);
  if (!replace)
    fail(r.line, "rule " + std::to_string(index) + " has no 'replace'");
  parseReplace(r, *replace);
  return r;
}

} // namespace

std::variant<RuleSet, Diagnostic>
RuleSet::parseString(const std::string &text, const std::string &fileName) {
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1)
      return Diagnostic{fileName, lineOf(docs[1]), 0,
                        "a rules file holds one YAML document"};
    YAML::Node root = docs.empty() ? YAML::Node() : docs[0];
    if (!root.IsDefined() || root.IsNull())
      return Diagnostic{fileName, 1, 0, "no rules in file"};
    if (!root.IsSequence())
      return Diagnostic{fileName, std::max(lineOf(root), 1), 0,
                        "the top level must be a sequence of rules, got " +
                            describe(root)};
    if (root.size() == 0)
      return Diagnostic{fileName, std::max(lineOf(root), 1), 0,
                        "no rules in file"};
    RuleSet set;
    set.file = fileName;
    for (size_t i = 0; i < root.size(); ++i)
      set.ruleList.push_back(parseRule(root[i], i));
    return set;
  } catch (const RuleError &e) {
    return Diagnostic{fileName, e.line, 0, e.message};
  } catch (const YAML::Exception &e) {
    int line = lineOf(e.mark);
    int column = e.mark.column < 0 ? 0 : e.mark.column + 1;
    // yaml-cpp reports some errors (an unclosed flow collection, say) at
    // the token after the mistake: the next rule's "- " or the end of the
    // file. Point at the last content line before it, inside the rule.
    int fixed = lastContentLineBefore(text, line);
    if (fixed != line) {
      line = fixed;
      column = 0;
    }
    return Diagnostic{fileName, line, column,
                      e.msg.empty() ? std::string(e.what()) : e.msg};
  } catch (const std::exception &e) {
    return Diagnostic{fileName, 0, 0, e.what()};
  } catch (...) {
    return Diagnostic{fileName, 0, 0, "unexpected error while parsing rules"};
  }
}

std::variant<RuleSet, Diagnostic> RuleSet::parseFile(const std::string &path) {
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return Diagnostic{path, 0, 0,
                        "cannot open rules file: " +
                            std::string(std::strerror(errno))};
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad())
      return Diagnostic{path, 0, 0, "cannot read rules file"};
    return parseString(buffer.str(), path);
  } catch (const std::exception &e) {
    return Diagnostic{path, 0, 0, e.what()};
  }
}

bool RuleSet::matches(const Rule &r, std::string_view name,
                      std::string_view moduleClass) const {
  try {
    if (r.matchClass && !isInstance(moduleClass, *r.matchClass))
      return false;
    if (!r.namePattern)
      return true;
    if (r.nameRegex)
      return r.nameRegex->search(name);
    auto found = regexSearch(*r.namePattern, name);
    return std::holds_alternative<bool>(found) && std::get<bool>(found);
  } catch (...) {
    return false; // allocation failure only
  }
}

std::optional<size_t> RuleSet::firstMatch(std::string_view name,
                                          std::string_view moduleClass) const {
  for (const Rule &r : ruleList)
    if (matches(r, name, moduleClass))
      return r.index;
  return std::nullopt;
}

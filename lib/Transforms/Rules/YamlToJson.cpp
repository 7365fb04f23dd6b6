//===- YamlToJson.cpp - PyYAML-compatible typing of YAML values -----------===//
//
// Upstream loads rules with PyYAML (YAML 1.1 resolvers), so kwargs must be
// typed the same way: plain `0` is an int, plain `False` a bool, `"cuda"` a
// string, and mapping keys end up as Python values that kt stores as
// strings (`30:` -> "30").
//
//===----------------------------------------------------------------------===//

#include "YamlToJson.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

using namespace kt::rules;
using namespace kt::rules::detail;
using nlohmann::json;

namespace {

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

/// PyYAML's implicit resolvers for int and float, minus the sexagesimal
/// forms.
const NameRegex &intPattern() {
  static const auto re = std::get<0>(NameRegex::compile(
      "^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
      "|[-+]?0x[0-9a-fA-F_]+)$"));
  return *re;
}

const NameRegex &floatPattern() {
  static const auto re = std::get<0>(NameRegex::compile(
      "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?"
      "|\\.[0-9_]+(?:[eE][-+][0-9]+)?"
      "|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"));
  return *re;
}

bool isNullText(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> boolText(std::string_view s) {
  for (std::string_view t :
       {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
    if (s == t)
      return true;
  for (std::string_view f :
       {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
    if (s == f)
      return false;
  return std::nullopt;
}

std::string withoutUnderscores(std::string_view s) {
  std::string out;
  std::copy_if(s.begin(), s.end(), std::back_inserter(out),
               [](char c) { return c != '_'; });
  return out;
}

/// Value of text matching intPattern().
json intValue(std::string_view text) {
  std::string s = withoutUnderscores(text);
  bool negative = false;
  size_t pos = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    pos = 1;
  }
  int base = 10;
  if (s.compare(pos, 2, "0b") == 0) {
    base = 2;
    pos += 2;
  } else if (s.compare(pos, 2, "0x") == 0) {
    base = 16;
    pos += 2;
  } else if (s.size() > pos + 1 && s[pos] == '0') {
    base = 8;
    pos += 1;
  }
  std::string digits = s.substr(pos);
  if (digits.empty())
    return 0;
  errno = 0;
  unsigned long long magnitude = std::strtoull(digits.c_str(), nullptr, base);
  if (errno == ERANGE || magnitude > static_cast<unsigned long long>(
                                         std::numeric_limits<long long>::max()))
    return negative ? -static_cast<double>(magnitude)
                    : static_cast<double>(magnitude);
  long long value = static_cast<long long>(magnitude);
  return negative ? -value : value;
}

json floatValue(std::string_view text) {
  std::string s = withoutUnderscores(text);
  if (s.find("inf") != std::string::npos ||
      s.find("Inf") != std::string::npos || s.find("INF") != std::string::npos)
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  if (s.find('n') != std::string::npos || s.find('N') != std::string::npos)
    return std::numeric_limits<double>::quiet_NaN();
  return std::strtod(s.c_str(), nullptr);
}

json implicitScalar(const std::string &s) {
  if (isNullText(s))
    return nullptr;
  if (auto b = boolText(s))
    return *b;
  if (intPattern().search(s))
    return intValue(s);
  if (floatPattern().search(s))
    return floatValue(s);
  return s;
}

} // namespace

json kt::rules::detail::scalarToJson(const YAML::Node &node) {
  if (node.IsNull())
    return nullptr;
  const std::string &text = node.Scalar();
  const std::string &tag = node.Tag();
  if (tag == "?" || tag.empty())
    return implicitScalar(text);
  if (tag == "!")
    return text; // quoted or block scalar
  if (tag.compare(0, kTagPrefix.size(), kTagPrefix) == 0) {
    std::string_view type = std::string_view(tag).substr(kTagPrefix.size());
    json value = implicitScalar(text);
    if ((type == "int" && value.is_number_integer()) ||
        (type == "float" && value.is_number()) ||
        (type == "bool" && value.is_boolean()) ||
        (type == "null" && value.is_null()))
      return type == "float" ? json(value.get<double>()) : value;
  }
  return text;
}

std::string kt::rules::detail::keyToString(const json &key) {
  if (key.is_string())
    return key.get<std::string>();
  if (key.is_boolean())
    return key.get<bool>() ? "True" : "False"; // str() of a Python bool
  if (key.is_null())
    return "None";
  return key.dump();
}

std::variant<json, YamlValueError>
kt::rules::detail::yamlToJson(const YAML::Node &node) {
  switch (node.Type()) {
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    return json(nullptr);
  case YAML::NodeType::Scalar:
    return scalarToJson(node);
  case YAML::NodeType::Sequence: {
    json array = json::array();
    for (const YAML::Node &item : node) {
      auto value = yamlToJson(item);
      if (auto *err = std::get_if<YamlValueError>(&value))
        return *err;
      array.push_back(std::move(std::get<json>(value)));
    }
    return array;
  }
  case YAML::NodeType::Map: {
    json object = json::object();
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar() && !it->first.IsNull())
        return YamlValueError{it->first.Mark(), "mapping keys must be scalars"};
      std::string key = keyToString(scalarToJson(it->first));
      if (object.contains(key))
        return YamlValueError{it->first.Mark(), "duplicate key '" + key + "'"};
      auto value = yamlToJson(it->second);
      if (auto *err = std::get_if<YamlValueError>(&value))
        return *err;
      object[key] = std::move(std::get<json>(value));
    }
    return object;
  }
  }
  return json(nullptr);
}

//===- YamlToJson.h - PyYAML-compatible typing of YAML values ---*- C++ -*-===//
//
// Not installed; used only by lib/Transforms/Rules.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_TRANSFORMS_RULES_YAMLTOJSON_H
#define KT_LIB_TRANSFORMS_RULES_YAMLTOJSON_H

#include "RulesInternal.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <variant>

namespace kt::rules::detail {

struct YamlValueError {
  YAML::Mark mark;
  std::string message;
};

/// A scalar (or null) node typed like PyYAML's FullLoader: null, bool
/// (yes/no/on/off/true/false), int (decimal, 0b, 0x, leading-0 octal),
/// float (needs a '.'; .inf, .nan), otherwise string. Quoted scalars are
/// always strings.
nlohmann::json scalarToJson(const YAML::Node &node);

/// A typed mapping key as the string kt stores it under ("30", "True").
std::string keyToString(const nlohmann::json &key);

/// Any node; mapping keys become strings, duplicate keys are an error.
std::variant<nlohmann::json, YamlValueError> yamlToJson(const YAML::Node &node);

} // namespace kt::rules::detail

#endif // KT_LIB_TRANSFORMS_RULES_YAMLTOJSON_H

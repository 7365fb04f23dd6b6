//===- JsonUtil.h - lenient field access for tokenizer JSON -----*- C++ -*-===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_JSONUTIL_H
#define KT_LIB_RUNTIME_TOKENIZER_JSONUTIL_H

#include <nlohmann/json.hpp>

#include <string>

namespace kt::tok {

using nlohmann::json;

/// j[key] as a string, or `def` when absent or null.
inline std::string getString(const json &j, const char *key,
                             const std::string &def = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return def;
  return it->get<std::string>();
}

inline bool getBool(const json &j, const char *key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return def;
  return it->get<bool>();
}

/// The "type" of a component object, "" when missing.
inline std::string typeOf(const json &j) {
  return j.is_object() ? getString(j, "type") : std::string();
}

/// A {"String": s} or {"Regex": r} pattern; sets isRegex.
inline bool getPattern(const json &j, std::string &pattern, bool &isRegex) {
  if (!j.is_object())
    return false;
  if (auto it = j.find("String"); it != j.end() && it->is_string()) {
    pattern = it->get<std::string>();
    isRegex = false;
    return true;
  }
  if (auto it = j.find("Regex"); it != j.end() && it->is_string()) {
    pattern = it->get<std::string>();
    isRegex = true;
    return true;
  }
  return false;
}

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_JSONUTIL_H

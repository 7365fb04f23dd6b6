//===- RulesTestUtil.h - Helpers for the rule engine tests ------*- C++ -*-===//

#ifndef KT_UNITTESTS_TRANSFORMS_RULESTESTUTIL_H
#define KT_UNITTESTS_TRANSFORMS_RULESTESTUTIL_H

#include "kt/Transforms/Rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace kt::rules::test {

/// Parses `text`; a Diagnostic is a test failure (and an empty set).
inline RuleSet parseOk(const std::string &text) {
  auto result = RuleSet::parseString(text, "test.yaml");
  if (auto *diag = std::get_if<Diagnostic>(&result)) {
    ADD_FAILURE() << "unexpected diagnostic: " << diag->str();
    return RuleSet();
  }
  return std::get<RuleSet>(std::move(result));
}

/// Parses `text` expecting a Diagnostic; success is a test failure.
inline Diagnostic parseErr(const std::string &text) {
  auto result = RuleSet::parseString(text, "test.yaml");
  if (auto *diag = std::get_if<Diagnostic>(&result))
    return *diag;
  ADD_FAILURE() << "expected a diagnostic, got "
                << std::get<RuleSet>(result).rules().size() << " rules";
  return Diagnostic{"", -1, -1, "<parsed>"};
}

/// The vendored upstream rule files, sorted.
inline std::vector<std::filesystem::path> upstreamRuleFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto &entry :
       std::filesystem::directory_iterator(KT_UPSTREAM_RULES_DIR))
    if (entry.path().extension() == ".yaml")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

inline RuleSet parseUpstream(const std::string &leafName) {
  std::string path = std::string(KT_UPSTREAM_RULES_DIR) + "/" + leafName;
  auto result = RuleSet::parseFile(path);
  if (auto *diag = std::get_if<Diagnostic>(&result)) {
    ADD_FAILURE() << diag->str();
    return RuleSet();
  }
  return std::get<RuleSet>(std::move(result));
}

} // namespace kt::rules::test

#endif // KT_UNITTESTS_TRANSFORMS_RULESTESTUTIL_H

//===- Rules.h - KTransformers-compatible injection rules -------*- C++ -*-===//
//
// The rule engine: parses KTransformers' YAML injection rules, matches them
// against module names and classes the way upstream's gen_optimize_config
// does (name: Python re.search; class: isinstance on the last dotted
// component) and maps replace classes onto kt ops. Plain C++, no MLIR.
//
// Every function here is exception free: parse errors come back as a
// Diagnostic, resolution errors as a message string.
//
//===----------------------------------------------------------------------===//

#ifndef KT_TRANSFORMS_RULES_H
#define KT_TRANSFORMS_RULES_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kt::rules {

/// A located error. `line` and `column` are 1-based; 0 means unknown.
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  /// "FILE:LINE:COL: error: MESSAGE"; ":COL" is omitted when column is 0 and
  /// ":LINE:COL" when line is 0.
  std::string str() const;
};

namespace detail {
/// A compiled `match.name` pattern (PCRE2); defined in the library.
class NameRegex;
} // namespace detail

struct Rule {
  /// 0-based position in the file.
  size_t index = 0;
  /// 1-based line of the rule's first key (the `- match:` line).
  int line = 0;
  /// match.name as written.
  std::optional<std::string> namePattern;
  /// match.class as written (full dotted path).
  std::optional<std::string> matchClass;
  /// replace.class as written; "default" when absent.
  std::string replaceClass = "default";
  /// replace.kwargs as a JSON object ({} when absent). Scalars are typed the
  /// way PyYAML types them; mapping keys become strings.
  nlohmann::json kwargs = nlohmann::json::object();
  bool recursive = true;

  // Source lines (1-based; 0 when the key is absent), for diagnostics that
  // later passes want to attach to the rule.
  int nameLine = 0;
  int matchClassLine = 0;
  /// Line of replace.class, or of `replace:` when class is absent.
  int replaceClassLine = 0;
  int recursiveLine = 0;
  /// Line of each key under replace.kwargs; keys of a nested mapping are
  /// recorded as "outer.inner" ("transfer_map.30").
  std::map<std::string, int> kwargLines;

  /// Compiled namePattern; set by the parser. When null but namePattern is
  /// set (a hand-built Rule), matching compiles the pattern on the fly.
  std::shared_ptr<const detail::NameRegex> nameRegex;

  /// Line of a kwargs key ("generate_device", "transfer_map.30") if known,
  /// else of its outer key, else replaceClassLine, else line.
  int lineOfKwarg(std::string_view key) const;
};

class RuleSet {
public:
  RuleSet() = default;

  /// Parse a rules file. On error returns the Diagnostic (file = path as
  /// given, line = 1-based line inside the offending rule, pointing at the
  /// offending key where possible).
  static std::variant<RuleSet, Diagnostic> parseFile(const std::string &path);
  static std::variant<RuleSet, Diagnostic>
  parseString(const std::string &text, const std::string &fileName);

  const std::vector<Rule> &rules() const { return ruleList; }
  const std::string &fileName() const { return file; }

  /// Does rule `r` match a module with dotted name `name` whose class (full
  /// dotted python path or leaf) is `moduleClass`? Both `match.name`
  /// (re.search) and `match.class` (isinstance) must hold when both given.
  bool matches(const Rule &r, std::string_view name,
               std::string_view moduleClass) const;

  /// Index of the first rule (file order) matching, or nullopt.
  std::optional<size_t> firstMatch(std::string_view name,
                                   std::string_view moduleClass) const;

private:
  std::vector<Rule> ruleList;
  std::string file;
};

/// Python `re.search(pattern, text) is not None` with PCRE2. Returns an
/// error message when the pattern does not compile.
std::variant<bool, std::string> regexSearch(std::string_view pattern,
                                            std::string_view text);

/// Last dotted component: "torch.nn.Linear" -> "Linear".
std::string_view classLeaf(std::string_view dottedClass);

/// isinstance on the last dotted component: true when leaf(moduleClass) ==
/// leaf(baseClass) or baseClass's leaf is an ancestor of it in the class
/// registry; every class derives from "Module" (torch.nn.Module).
bool isInstance(std::string_view moduleClass, std::string_view baseClass);
/// The leaf of `anyDottedClass` is known in the registry.
bool isKnownClass(std::string_view anyDottedClass);
/// Registry parent of a class leaf ("" for Module, nullopt when unknown).
std::optional<std::string> parentClass(std::string_view anyDottedClass);

/// Result of resolving a rule's replace class against a module.
struct Target {
  /// Resulting kt op name.
  std::string op;
  /// Upstream implementation name (class leaf or generate_op), or "".
  std::string impl;
};

/// Target op resolution. `currentOp` is the kt op name of the module being
/// replaced (kt.module for containers, kt.linear, kt.embedding, kt.rms_norm,
/// kt.rotary, kt.moe_gate, kt.experts; kt.attention counts as kt.module).
/// Returns the resulting op, or an error message such as
/// "ktransformers.operators.experts.KTransformersExperts cannot replace a
/// module of kind kt.linear".
std::variant<Target, std::string> resolveTarget(const Rule &r,
                                                std::string_view currentOp);

/// Is `replaceClass` accepted as replace.class ("default", a kt op name or an
/// upstream class path)?
bool isKnownReplaceClass(std::string_view replaceClass);

/// Device strings: "cpu", "cuda", "cuda:N" (N decimal).
bool isValidDevice(std::string_view d);
/// Canonical form: "cuda" -> "cuda:0", "cuda:01" -> "cuda:1". Invalid input
/// is returned unchanged.
std::string normalizeDevice(std::string_view d);

} // namespace kt::rules

#endif // KT_TRANSFORMS_RULES_H

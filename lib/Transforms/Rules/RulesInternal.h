//===- RulesInternal.h - Shared helpers of the rule library -----*- C++ -*-===//
//
// Not installed; used only by lib/Transforms/Rules.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_TRANSFORMS_RULES_RULESINTERNAL_H
#define KT_LIB_TRANSFORMS_RULES_RULESINTERNAL_H

#include "kt/Transforms/Rules.h"

#include <optional>
#include <string>
#include <string_view>

namespace kt::rules::detail {

/// A problem with a rule's replace section. `key` names the offending
/// replace.kwargs key, or is empty when replace.class itself is at fault.
struct ReplaceError {
  std::string key;
  std::string message;
};

/// Checks replace.class and replace.kwargs on their own (no module needed):
/// the class is known, devices are valid, transfer_map is int -> device, and
/// class-specific kwargs (generate_op, prefill_op, backend) are supported.
std::optional<ReplaceError> checkReplace(std::string_view replaceClass,
                                         const nlohmann::json &kwargs);

/// A compiled `match.name` pattern.
class NameRegex {
public:
  /// Compiles `pattern`; on failure returns PCRE2's message with the offset.
  static std::variant<std::shared_ptr<const NameRegex>, std::string>
  compile(std::string_view pattern);
  ~NameRegex();
  NameRegex(const NameRegex &) = delete;
  NameRegex &operator=(const NameRegex &) = delete;

  /// re.search: true when the pattern matches anywhere in `text`.
  bool search(std::string_view text) const;

private:
  explicit NameRegex(void *code) : code(code) {}
  void *code; // pcre2_code *
};

} // namespace kt::rules::detail

#endif // KT_LIB_TRANSFORMS_RULES_RULESINTERNAL_H

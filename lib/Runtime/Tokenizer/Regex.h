//===- Regex.h - PCRE2 regular expressions for the tokenizer ----*- C++ -*-===//
//
// Split patterns of tokenizer.json are Oniguruma regexes in Hugging Face
// tokenizers; PCRE2 in UTF + UCP mode accepts the ones real tokenizers use
// (\p{L}, \p{N}, \s, (?!\S), (?i:...)).
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_REGEX_H
#define KT_LIB_RUNTIME_TOKENIZER_REGEX_H

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kt::tok {

using Span = std::pair<size_t, size_t>; // [begin, end) byte offsets

class Regex {
public:
  /// Compiles `pattern` (matched literally when `literal`). On failure
  /// returns nullopt and sets `error` to PCRE2's message and offset.
  static std::optional<Regex> compile(std::string_view pattern, bool literal,
                                      std::string &error);

  /// Every non-empty, non-overlapping match in valid UTF-8 text `s`, left
  /// to right.
  std::vector<Span> findAll(std::string_view s) const;

private:
  struct Code;
  std::shared_ptr<Code> code;
};

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_REGEX_H

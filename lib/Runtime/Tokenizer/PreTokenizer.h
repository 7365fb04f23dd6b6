//===- PreTokenizer.h - tokenizer.json pre-tokenizers -----------*- C++ -*-===//
//
// Split (String or Regex pattern, every split behaviour, invert), ByteLevel
// (add_prefix_space, use_regex with the GPT-2 pattern), Digits, Metaspace,
// Whitespace, WhitespaceSplit and Sequence.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_PRETOKENIZER_H
#define KT_LIB_RUNTIME_TOKENIZER_PRETOKENIZER_H

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace kt::tok {

/// A piece of text on its way to the model. `atStart`: the piece begins at
/// offset 0 of the text given to encode() (Metaspace's prepend_scheme
/// "first" looks at it).
struct Piece {
  std::string text;
  bool atStart = false;
};

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  /// Replaces `pieces` by their pre-tokenized pieces (empty ones dropped).
  virtual void apply(std::vector<Piece> &pieces) const = 0;
};

std::unique_ptr<PreTokenizer> parsePreTokenizer(const nlohmann::json &j,
                                                std::string &error);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_PRETOKENIZER_H

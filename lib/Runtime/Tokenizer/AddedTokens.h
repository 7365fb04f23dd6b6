//===- AddedTokens.h - tokenizer.json added tokens --------------*- C++ -*-===//
//
// Added tokens ("<|im_start|>", "<s>", ...) are cut out of the text before
// normalisation and pre-tokenisation: leftmost match first, the longest
// token at a position, honouring lstrip / rstrip (the match swallows the
// whitespace beside it) and single_word. Tokens with normalized=false are
// matched in the raw text, the others in the normalised text.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_ADDEDTOKENS_H
#define KT_LIB_RUNTIME_TOKENIZER_ADDEDTOKENS_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kt::tok {

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false;
  bool lstrip = false, rstrip = false;
  bool normalized = false;
  bool singleWord = false;
};

class AddedTokenMatcher {
public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  /// A stretch of the text: plain text (id < 0) or an added token.
  struct Segment {
    size_t begin, end;
    int64_t id;
  };
  std::vector<Segment> split(std::string_view text) const;
  bool empty() const { return tokens.empty(); }

private:
  std::vector<AddedToken> tokens;
  // Indices into `tokens` by first byte, longest first.
  std::array<std::vector<size_t>, 256> byFirstByte;
};

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_ADDEDTOKENS_H

//===- Normalizer.h - tokenizer.json normalizers ----------------*- C++ -*-===//
//
// NFC / NFD / NFKC / NFKD, Lowercase, Prepend, Replace, Strip and Sequence.
// A normalizer runs on every piece of text between added tokens.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_NORMALIZER_H
#define KT_LIB_RUNTIME_TOKENIZER_NORMALIZER_H

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace kt::tok {

class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

/// Builds the normalizer described by `j` (an object with "type"); on an
/// unsupported or malformed one returns null and sets `error`.
std::unique_ptr<Normalizer> parseNormalizer(const nlohmann::json &j,
                                            std::string &error);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_NORMALIZER_H

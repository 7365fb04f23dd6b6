//===- Decoder.h - tokenizer.json decoders ----------------------*- C++ -*-===//
//
// ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence. As
// in Hugging Face tokenizers, a decoder maps the list of token strings to a
// list of strings whose concatenation is the text.
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_DECODER_H
#define KT_LIB_RUNTIME_TOKENIZER_DECODER_H

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace kt::tok {

class Decoder {
public:
  virtual ~Decoder() = default;
  virtual void decodeChain(std::vector<std::string> &tokens) const = 0;
};

std::unique_ptr<Decoder> parseDecoder(const nlohmann::json &j,
                                      std::string &error);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_DECODER_H

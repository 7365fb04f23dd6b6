//===- TokenizerImpl.h - the state behind kt::Tokenizer ---------*- C++ -*-===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_TOKENIZERIMPL_H
#define KT_LIB_RUNTIME_TOKENIZER_TOKENIZERIMPL_H

#include "AddedTokens.h"
#include "Bpe.h"
#include "ChatTemplate.h"
#include "Decoder.h"
#include "Normalizer.h"
#include "PostProcessor.h"
#include "PreTokenizer.h"

#include "kt/Runtime/Tokenizer.h"

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kt {

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;     // may be null
  std::unique_ptr<tok::PreTokenizer> preTokenizer; // may be null
  std::unique_ptr<tok::Bpe> model;
  std::unique_ptr<tok::PostProcessor> postProcessor; // may be null
  std::unique_ptr<tok::Decoder> decoder;             // may be null
  // The decoder has a ByteFallback step: a later <0xNN> token can turn the
  // bytes of earlier ones into U+FFFD, so streaming holds them back.
  bool byteFallbackDecoder = false;

  tok::AddedTokenMatcher rawMatcher; // added tokens with normalized=false
  tok::AddedTokenMatcher normalizedMatcher; // added tokens with normalized=true
  std::unordered_map<std::string, int64_t> addedIds;

  // Indexed by id, for decode().
  std::vector<std::string> tokens;
  std::vector<char> present;
  std::vector<char> special;
  std::vector<char> byteToken; // "<0xNN>"

  std::optional<int64_t> bos, eos;
  std::optional<bool> addBosToken, addEosToken; // tokenizer_config overrides
  tok::ChatSettings chat;
};

} // namespace kt

#endif // KT_LIB_RUNTIME_TOKENIZER_TOKENIZERIMPL_H

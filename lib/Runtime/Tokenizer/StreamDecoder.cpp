//===- StreamDecoder.cpp - incremental detokenisation ---------------------===//
//
// Keeps a short window of ids: `prefix` is the text of ids[prefixIndex,
// readIndex) (already returned), and each push decodes ids[prefixIndex, end)
// and returns what follows that prefix, unless the text ends in U+FFFD (an
// incomplete character: more bytes are coming) or, with a ByteFallback
// decoder, the new id is a <0xNN> piece (HF's ByteFallback turns a whole run
// of byte pieces into U+FFFDs when the run is not valid UTF-8, so a later
// byte can change the text of earlier ones). Decoding with the previous
// token(s) as context keeps decoders that look at the first token (Strip,
// Metaspace) and byte-level merging exact.
//
//===----------------------------------------------------------------------===//

#include "TokenizerImpl.h"

namespace kt {

namespace {

bool endsWithReplacement(const std::string &s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

// Ids kept before the read position once they no longer matter.
constexpr size_t kMaxStaleIds = 64;

} // namespace

StreamDecoder::StreamDecoder(const Tokenizer &tok, bool skipSpecialTokens)
    : tok(tok), skipSpecial(skipSpecialTokens) {}

std::string StreamDecoder::push(int64_t id) {
  ids.push_back(id);
  const Tokenizer::Impl &impl = *tok.impl;
  if (impl.byteFallbackDecoder && id >= 0 &&
      id < static_cast<int64_t>(impl.byteToken.size()) && impl.byteToken[id])
    return ""; // the next token may still turn these bytes into U+FFFD
  std::vector<int64_t> context(ids.begin() + prefixIndex,
                               ids.begin() + readIndex);
  std::string prefix = tok.decode(context, skipSpecial);
  std::vector<int64_t> window(ids.begin() + prefixIndex, ids.end());
  std::string text = tok.decode(window, skipSpecial);
  if (text.size() <= prefix.size() || endsWithReplacement(text) ||
      text.compare(0, prefix.size(), prefix) != 0)
    return "";
  std::string out = text.substr(prefix.size());
  prefixIndex = readIndex;
  readIndex = ids.size();
  if (prefixIndex > kMaxStaleIds) {
    ids.erase(ids.begin(), ids.begin() + prefixIndex);
    readIndex -= prefixIndex;
    prefixIndex = 0;
  }
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  if (readIndex < ids.size()) {
    std::vector<int64_t> context(ids.begin() + prefixIndex,
                                 ids.begin() + readIndex);
    std::string prefix = tok.decode(context, skipSpecial);
    std::vector<int64_t> window(ids.begin() + prefixIndex, ids.end());
    std::string text = tok.decode(window, skipSpecial);
    if (text.compare(0, prefix.size(), prefix) == 0)
      out = text.substr(prefix.size());
    else
      out = text;
  }
  ids.clear();
  prefixIndex = readIndex = 0;
  return out;
}

} // namespace kt

//===- Tokenizer.cpp - encode / decode / chat -----------------------------===//
//
// encode: added tokens are cut out of the raw text; each remaining stretch is
// normalised, searched for normalised added tokens, pre-tokenized and run
// through the BPE model; the post-processor then adds special tokens.
// decode: ids -> token strings -> decoder chain -> text.
//
//===----------------------------------------------------------------------===//

#include "TokenizerImpl.h"

#include "Unicode.h"

namespace kt {

namespace {

void encodeText(const Tokenizer::Impl &impl, std::string_view text,
                bool atStart, std::vector<int64_t> &ids) {
  std::vector<tok::Piece> pieces{{std::string(text), atStart}};
  if (impl.preTokenizer)
    impl.preTokenizer->apply(pieces);
  for (const auto &p : pieces)
    impl.model->tokenize(p.text, ids);
}

} // namespace

std::vector<int64_t> Tokenizer::encode(std::string_view input,
                                       bool addSpecialTokens) const {
  std::vector<int64_t> ids;
  std::string repaired;
  if (!tok::isValidUtf8(input)) {
    repaired = tok::utf8Lossy(input);
    input = repaired;
  }
  for (const auto &seg : impl->rawMatcher.split(input)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view raw = input.substr(seg.begin, seg.end - seg.begin);
    bool atStart = seg.begin == 0;
    if (!impl->normalizer) {
      encodeText(*impl, raw, atStart, ids);
      continue;
    }
    std::string text = impl->normalizer->normalize(std::string(raw));
    for (const auto &sub : impl->normalizedMatcher.split(text)) {
      if (sub.id >= 0)
        ids.push_back(sub.id);
      else
        encodeText(
            *impl,
            std::string_view(text).substr(sub.begin, sub.end - sub.begin),
            atStart && sub.begin == 0, ids);
    }
  }
  if (!addSpecialTokens)
    return ids;
  std::vector<int64_t> prefix;
  if (impl->postProcessor) {
    prefix = impl->postProcessor->prefixIds();
    impl->postProcessor->process(ids);
  }
  // tokenizer_config.json's add_bos_token / add_eos_token override what the
  // post-processor does about BOS / EOS.
  bool procAddsBos =
      impl->bos && !prefix.empty() && prefix.front() == *impl->bos;
  if (impl->addBosToken && impl->bos) {
    if (*impl->addBosToken && !procAddsBos)
      ids.insert(ids.begin(), *impl->bos);
    else if (!*impl->addBosToken && procAddsBos)
      ids.erase(ids.begin());
  }
  if (impl->addEosToken && *impl->addEosToken && impl->eos &&
      (ids.empty() || ids.back() != *impl->eos))
    ids.push_back(*impl->eos);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t> &ids,
                              bool skipSpecialTokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  int64_t size = static_cast<int64_t>(impl->tokens.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= size || !impl->present[id])
      continue;
    if (skipSpecialTokens && impl->special[id])
      continue;
    tokens.push_back(impl->tokens[id]);
  }
  std::string out;
  if (impl->decoder) {
    impl->decoder->decodeChain(tokens);
    for (const auto &t : tokens)
      out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i)
      out += (i ? " " : "") + tokens[i];
  }
  return out;
}

int64_t Tokenizer::vocabSize() const {
  return static_cast<int64_t>(impl->tokens.size());
}

std::optional<int64_t> Tokenizer::tokenId(std::string_view token) const {
  std::string key(token);
  if (auto it = impl->addedIds.find(key); it != impl->addedIds.end())
    return it->second;
  if (auto it = impl->model->vocab().find(key);
      it != impl->model->vocab().end())
    return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::idToToken(int64_t id) const {
  if (id < 0 || id >= vocabSize() || !impl->present[id])
    return std::nullopt;
  return impl->tokens[id];
}

std::optional<int64_t> Tokenizer::bosId() const { return impl->bos; }
std::optional<int64_t> Tokenizer::eosId() const { return impl->eos; }

bool Tokenizer::isSpecial(int64_t id) const {
  return id >= 0 && id < vocabSize() && impl->special[id];
}

Result<std::string>
Tokenizer::applyChatTemplate(const std::vector<ChatMessage> &messages,
                             bool addGenerationPrompt) const {
  try {
    return tok::renderChat(impl->chat, messages, addGenerationPrompt);
  } catch (const std::exception &e) {
    return Error{std::string("chat template: ") + e.what()};
  }
}

const std::string &Tokenizer::chatFamily() const { return impl->chat.family; }
const std::string &Tokenizer::chatTemplate() const {
  return impl->chat.templateText;
}

} // namespace kt

//===- Tokenizer.h - Hugging Face tokenizer.json tokenizer ------*- C++ -*-===//
//
// Encodes text to token ids and decodes ids back to text the way Hugging Face
// `tokenizers` does for the BPE tokenizers of the supported model families
// (byte-level BPE as in Qwen / DeepSeek / Llama-3, sentencepiece-style BPE with
// byte fallback as in Llama-2 / Mistral / Mixtral), renders chat
// conversations with the family's built-in chat template, and streams decoded
// text while ids arrive. docs/tokenizer.md lists what is supported.
//
//   Result<Tokenizer> tok = Tokenizer::load(modelDir);
//   if (!tok.ok()) { report(tok.error().message); return; }
//   std::vector<int64_t> ids = tok->encode("Hello world");
//   std::string text = tok->decode(ids);
//
// Error handling: nothing in this API throws on bad input. load() reports a
// problem with the files as an Error whose message names the file and what is
// wrong. A Tokenizer is immutable after load(), cheap to copy (it shares its
// tables) and safe to use from several threads at once.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_TOKENIZER_H
#define KT_RUNTIME_TOKENIZER_H

#include "kt/Runtime/Safetensors.h" // kt::Result, kt::Error

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kt {

/// One turn of a conversation ("system", "user", "assistant", ...).
struct ChatMessage {
  std::string role, content;
};

class Tokenizer {
public:
  /// Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json
  /// (chat_template, bos/eos tokens, add_bos_token / add_eos_token). A chat
  /// template kept in DIR/chat_template.jinja or DIR/chat_template.json is
  /// used when tokenizer_config.json has none.
  static Result<Tokenizer> load(const std::string &modelDir);

  /// Builds a tokenizer from the texts of tokenizer.json and (optionally)
  /// tokenizer_config.json. Error messages name them "tokenizer.json" and
  /// "tokenizer_config.json".
  static Result<Tokenizer> fromJson(std::string_view tokenizerJson,
                                    std::string_view tokenizerConfigJson = {});

  /// Text to ids. The post-processor (e.g. a leading BOS) runs only when
  /// addSpecialTokens is set; added tokens written in the text (e.g.
  /// "<|im_start|>") are always recognised. Invalid UTF-8 in `text` is
  /// replaced by U+FFFD first.
  std::vector<int64_t> encode(std::string_view text,
                              bool addSpecialTokens = true) const;

  /// Ids to text through the tokenizer's decoder. Unknown ids are skipped.
  std::string decode(const std::vector<int64_t> &ids,
                     bool skipSpecialTokens = false) const;

  /// Max id + 1 over the model vocabulary and the added tokens.
  int64_t vocabSize() const;
  /// The id of a token string (model vocabulary or added token).
  std::optional<int64_t> tokenId(std::string_view token) const;
  /// The token string of an id (as in tokenizer.json, e.g. "Ġthe", "▁a").
  std::optional<std::string> idToToken(int64_t id) const;

  /// From tokenizer_config.json, or else the post-processor's leading
  /// special token (BOS) / none (EOS).
  std::optional<int64_t> bosId() const;
  std::optional<int64_t> eosId() const;
  /// Whether `id` is an added token marked "special".
  bool isSpecial(int64_t id) const;

  /// Renders the conversation with the built-in template of the family
  /// recognised in tokenizer_config.json's chat_template (see chatFamily()).
  /// No Jinja engine runs: an absent or unrecognised template is an Error
  /// naming the supported families.
  Result<std::string>
  applyChatTemplate(const std::vector<ChatMessage> &messages,
                    bool addGenerationPrompt) const;
  /// "chatml", "deepseek", "llama3", "mistral", or "" when no supported
  /// template was recognised.
  const std::string &chatFamily() const;
  /// The raw chat_template text ("" when there is none).
  const std::string &chatTemplate() const;

  struct Impl;

private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl)
      : impl(std::move(impl)) {}
  std::shared_ptr<const Impl> impl;
  friend class StreamDecoder;
};

/// Turns ids into text as they arrive (e.g. during generation). push()
/// returns the text that the new id completes; it never returns part of a
/// UTF-8 character: bytes of byte-level tokens and <0xNN> byte-fallback
/// pieces are held back until the character is complete. The concatenation
/// of every push() and finish() equals tok.decode(all ids).
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &tok, bool skipSpecialTokens = false);
  /// Adds one id; returns the newly completed text (possibly "").
  std::string push(int64_t id);
  /// Returns whatever is still held back (an incomplete character at the
  /// end comes out as U+FFFD, as decode() gives it) and resets the stream.
  std::string finish();

private:
  Tokenizer tok;
  bool skipSpecial;
  std::vector<int64_t> ids;
  size_t prefixIndex = 0; // start of the context window in `ids`
  size_t readIndex = 0;   // first id whose text is not yet returned
};

} // namespace kt

#endif // KT_RUNTIME_TOKENIZER_H

//===- TokenizerJson.cpp - reading tokenizer.json / tokenizer_config.json -===//
//
// Builds Tokenizer::Impl from the files of a Hugging Face model directory.
// Every problem becomes an Error naming the file; JSON library exceptions
// are caught here and never leave the API.
//
//===----------------------------------------------------------------------===//

#include "TokenizerImpl.h"

#include "JsonUtil.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace kt {

using tok::json;

namespace {

constexpr const char *kTokenizerFile = "tokenizer.json";
constexpr const char *kConfigFile = "tokenizer_config.json";

Error fileError(const char *file, const std::string &what) {
  return Error{std::string(file) + ": " + what};
}

/// Reads a whole file; nullopt when it cannot be opened.
std::optional<std::string> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A token given as "text" or as an AddedToken object {"content": "text"}.
std::optional<std::string> tokenText(const json &j) {
  if (j.is_string())
    return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return std::nullopt;
}

bool hasByteFallback(const json &decoder) {
  if (tok::typeOf(decoder) == "ByteFallback")
    return true;
  if (decoder.is_object() && decoder.contains("decoders") &&
      decoder["decoders"].is_array())
    for (const auto &d : decoder["decoders"])
      if (hasByteFallback(d))
        return true;
  return false;
}

bool isByteToken(const std::string &t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(t[3])) &&
         std::isxdigit(static_cast<unsigned char>(t[4]));
}

std::optional<Error> parseTokenizerJson(Tokenizer::Impl &impl,
                                        const json &root) {
  if (!root.is_object())
    return fileError(kTokenizerFile, "top level is not a JSON object");
  auto modelIt = root.find("model");
  if (modelIt == root.end() || !modelIt->is_object())
    return fileError(kTokenizerFile, "no 'model' object");
  std::string type = tok::getString(*modelIt, "type");
  if (type.empty() && modelIt->contains("merges"))
    type = "BPE"; // old files leave the BPE type implicit
  if (type != "BPE")
    return fileError(kTokenizerFile,
                     "model.type '" + type + "' is not supported (BPE only)");
  std::string error;
  impl.model = tok::Bpe::parse(*modelIt, error);
  if (!impl.model)
    return fileError(kTokenizerFile, error);

  auto component = [&](const char *key, auto parse,
                       auto &slot) -> std::optional<Error> {
    auto it = root.find(key);
    if (it == root.end() || it->is_null())
      return std::nullopt;
    if (!it->is_object())
      return fileError(kTokenizerFile, std::string(key) + " is not an object");
    slot = parse(*it, error);
    if (!slot)
      return fileError(kTokenizerFile, error);
    return std::nullopt;
  };
  if (auto e = component("normalizer", tok::parseNormalizer, impl.normalizer))
    return e;
  if (auto e =
          component("pre_tokenizer", tok::parsePreTokenizer, impl.preTokenizer))
    return e;
  if (auto e = component("post_processor", tok::parsePostProcessor,
                         impl.postProcessor))
    return e;
  if (auto e = component("decoder", tok::parseDecoder, impl.decoder))
    return e;
  if (root.contains("decoder"))
    impl.byteFallbackDecoder = hasByteFallback(root["decoder"]);

  // Id table: the model vocabulary, then the added tokens over it.
  int64_t size = 0;
  for (const auto &[text, id] : impl.model->vocab())
    size = std::max(size, id + 1);
  std::vector<tok::AddedToken> added;
  if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
    if (!it->is_array())
      return fileError(kTokenizerFile, "added_tokens is not a list");
    for (const auto &a : *it) {
      if (!a.is_object() || !a.contains("content") ||
          !a["content"].is_string() || !a.contains("id") ||
          !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
          a["id"].get<int64_t>() > INT32_MAX)
        return fileError(
            kTokenizerFile,
            "added_tokens entry without a content string and id: " + a.dump());
      tok::AddedToken t;
      t.content = a["content"].get<std::string>();
      t.id = a["id"].get<int64_t>();
      t.special = tok::getBool(a, "special", false);
      t.lstrip = tok::getBool(a, "lstrip", false);
      t.rstrip = tok::getBool(a, "rstrip", false);
      t.normalized = tok::getBool(a, "normalized", !t.special);
      t.singleWord = tok::getBool(a, "single_word", false);
      size = std::max(size, t.id + 1);
      added.push_back(t);
    }
  }
  impl.tokens.assign(size, std::string());
  impl.present.assign(size, 0);
  impl.special.assign(size, 0);
  impl.byteToken.assign(size, 0);
  for (const auto &[text, id] : impl.model->vocab()) {
    impl.tokens[id] = text;
    impl.present[id] = 1;
    impl.byteToken[id] = isByteToken(text);
  }
  std::vector<tok::AddedToken> raw, normalized;
  for (const auto &t : added) {
    impl.tokens[t.id] = t.content;
    impl.present[t.id] = 1;
    impl.special[t.id] = t.special;
    impl.addedIds[t.content] = t.id;
    (t.normalized && impl.normalizer ? normalized : raw).push_back(t);
  }
  impl.rawMatcher = tok::AddedTokenMatcher(std::move(raw));
  impl.normalizedMatcher = tok::AddedTokenMatcher(std::move(normalized));
  return std::nullopt;
}

std::optional<int64_t> lookup(const Tokenizer::Impl &impl,
                              const std::string &text) {
  if (auto it = impl.addedIds.find(text); it != impl.addedIds.end())
    return it->second;
  if (auto it = impl.model->vocab().find(text); it != impl.model->vocab().end())
    return it->second;
  return std::nullopt;
}

std::optional<Error> parseConfig(Tokenizer::Impl &impl, const json &cfg) {
  if (!cfg.is_object())
    return fileError(kConfigFile, "top level is not a JSON object");
  for (const char *key : {"bos_token", "eos_token"}) {
    auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null())
      continue;
    auto text = tokenText(*it);
    if (!text)
      return fileError(kConfigFile,
                       std::string(key) + " is neither a string nor {content}");
    auto id = lookup(impl, *text);
    if (!id)
      return fileError(kConfigFile, std::string(key) + " '" + *text +
                                        "' is not a token of tokenizer.json");
    bool isBos = std::string(key) == "bos_token";
    (isBos ? impl.bos : impl.eos) = id;
    (isBos ? impl.chat.bosToken : impl.chat.eosToken) = *text;
  }
  if (auto it = cfg.find("add_bos_token"); it != cfg.end() && it->is_boolean())
    impl.addBosToken = it->get<bool>();
  if (auto it = cfg.find("add_eos_token"); it != cfg.end() && it->is_boolean())
    impl.addEosToken = it->get<bool>();
  if (auto it = cfg.find("chat_template"); it != cfg.end() && !it->is_null()) {
    if (it->is_string()) {
      impl.chat.templateText = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: [{"name": "default", "template": "..."}, ...]
      for (const auto &t : *it)
        if (t.is_object() && tok::getString(t, "name") == "default")
          impl.chat.templateText = tok::getString(t, "template");
    } else {
      return fileError(kConfigFile,
                       "chat_template is neither a string nor a list");
    }
  }
  return std::nullopt;
}

std::optional<Error> build(std::string_view tokenizerJson,
                           std::string_view configJson,
                           const std::optional<std::string> &extraTemplate,
                           Tokenizer::Impl &impl) {
  json root;
  try {
    root = json::parse(tokenizerJson);
  } catch (const json::exception &e) {
    return fileError(kTokenizerFile,
                     std::string("malformed JSON: ") + e.what());
  }
  try {
    if (auto e = parseTokenizerJson(impl, root))
      return *e;
  } catch (const json::exception &e) {
    return fileError(kTokenizerFile,
                     std::string("unexpected JSON content: ") + e.what());
  }
  if (!configJson.empty()) {
    json cfg;
    try {
      cfg = json::parse(configJson);
    } catch (const json::exception &e) {
      return fileError(kConfigFile, std::string("malformed JSON: ") + e.what());
    }
    try {
      if (auto e = parseConfig(impl, cfg))
        return *e;
    } catch (const json::exception &e) {
      return fileError(kConfigFile,
                       std::string("unexpected JSON content: ") + e.what());
    }
  }
  if (impl.chat.templateText.empty() && extraTemplate)
    impl.chat.templateText = *extraTemplate;
  // Without a configured BOS, the post-processor's leading special token is
  // the BOS (Llama / DeepSeek templates).
  if (!impl.bos && impl.postProcessor) {
    auto prefix = impl.postProcessor->prefixIds();
    if (!prefix.empty())
      impl.bos = prefix.front();
  }
  if (impl.bos && impl.chat.bosToken.empty())
    impl.chat.bosToken = impl.tokens[*impl.bos];
  if (impl.eos && impl.chat.eosToken.empty())
    impl.chat.eosToken = impl.tokens[*impl.eos];
  impl.chat.family = tok::detectChatFamily(impl.chat.templateText);
  return std::nullopt;
}

} // namespace

Result<Tokenizer> Tokenizer::fromJson(std::string_view tokenizerJson,
                                      std::string_view tokenizerConfigJson) {
  auto impl = std::make_unique<Impl>();
  try {
    if (auto e = build(tokenizerJson, tokenizerConfigJson, std::nullopt, *impl))
      return *e;
  } catch (const std::exception &e) {
    return Error{std::string("tokenizer.json: ") + e.what()};
  }
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

Result<Tokenizer> Tokenizer::load(const std::string &modelDir) {
  std::string dir = modelDir.empty() ? "." : modelDir;
  auto tokenizerText = readFile(dir + "/" + kTokenizerFile);
  if (!tokenizerText)
    return Error{std::string(kTokenizerFile) + ": cannot read " + dir + "/" +
                 kTokenizerFile};
  std::string configText = readFile(dir + "/" + kConfigFile).value_or("");
  // Newer checkpoints keep the template beside tokenizer_config.json.
  std::optional<std::string> extraTemplate =
      readFile(dir + "/chat_template.jinja");
  if (!extraTemplate) {
    if (auto text = readFile(dir + "/chat_template.json")) {
      try {
        json j = json::parse(*text);
        if (j.is_object() && j.contains("chat_template") &&
            j["chat_template"].is_string())
          extraTemplate = j["chat_template"].get<std::string>();
      } catch (const json::exception &) {
        return Error{"chat_template.json: malformed JSON"};
      }
    }
  }
  auto impl = std::make_unique<Impl>();
  try {
    if (auto e = build(*tokenizerText, configText, extraTemplate, *impl))
      return *e;
  } catch (const std::exception &e) {
    return Error{std::string("tokenizer.json: ") + e.what()};
  }
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

} // namespace kt

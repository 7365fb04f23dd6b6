//===- TokenizerFixtureTest.cpp - tokenizer vs. Hugging Face references ---===//
//
// For every fixture model: tokenizer_cases.json (ids from tokenizer(text),
// i.e. with special tokens, and decode(ids, skip_special_tokens=False)),
// reference.json's prompt (encoded with special tokens) and chat example
// (rendered by apply_chat_template, encoded without special tokens), and
// streaming decode of all of them.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

using nlohmann::json;

namespace {

const std::string kModels = std::string(KT_TEST_FIXTURES) + "/models/";

json readJson(const std::string &path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

/// True when `s` is valid UTF-8 with no character cut at either end.
bool isCompleteUtf8(const std::string &s) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80         ? 1
                 : (b >> 5) == 6  ? 2
                 : (b >> 4) == 14 ? 3
                 : (b >> 3) == 30 ? 4
                                  : 0;
    if (len == 0 || i + len > s.size())
      return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
        return false;
    i += len;
  }
  return true;
}

std::string expectedFamily(const std::string &model) {
  if (model.rfind("deepseek", 0) == 0)
    return "deepseek";
  if (model.rfind("qwen", 0) == 0)
    return "chatml";
  if (model == "llama")
    return "llama3";
  return "mistral";
}

class TokenizerFixture : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    dir = kModels + GetParam();
    auto loaded = kt::Tokenizer::load(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    tok.emplace(std::move(loaded).value());
  }

  /// Streams `ids`; checks every piece is whole UTF-8; returns the text.
  std::string stream(const std::vector<int64_t> &ids) {
    kt::StreamDecoder dec(*tok);
    std::string all;
    for (int64_t id : ids) {
      std::string piece = dec.push(id);
      EXPECT_TRUE(isCompleteUtf8(piece)) << "partial UTF-8 after id " << id;
      all += piece;
    }
    std::string rest = dec.finish();
    EXPECT_TRUE(isCompleteUtf8(rest));
    return all + rest;
  }

  std::string dir;
  std::optional<kt::Tokenizer> tok;
};

TEST_P(TokenizerFixture, Cases) {
  json cases = readJson(dir + "/tokenizer_cases.json");
  ASSERT_FALSE(cases.empty());
  for (const auto &c : cases) {
    std::string text = c["text"];
    auto expected = c["ids"].get<std::vector<int64_t>>();
    SCOPED_TRACE("text: " + text);
    auto ids = tok->encode(text);
    EXPECT_EQ(ids, expected);
    std::vector<std::string> tokens;
    for (int64_t id : expected)
      tokens.push_back(tok->idToToken(id).value_or("<none>"));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
    EXPECT_EQ(tok->decode(expected), c["decoded"].get<std::string>());
  }
}

TEST_P(TokenizerFixture, Prompt) {
  json ref = readJson(dir + "/reference.json");
  EXPECT_EQ(tok->encode(ref["prompt"].get<std::string>()),
            ref["prompt_ids"].get<std::vector<int64_t>>());
}

TEST_P(TokenizerFixture, Chat) {
  json chat = readJson(dir + "/reference.json")["chat"];
  ASSERT_TRUE(chat.is_object());
  std::vector<kt::ChatMessage> messages;
  for (const auto &m : chat["messages"])
    messages.push_back({m["role"], m["content"]});
  EXPECT_EQ(tok->chatFamily(), expectedFamily(GetParam()));
  auto text = tok->applyChatTemplate(messages,
                                     chat["add_generation_prompt"].get<bool>());
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, chat["text"].get<std::string>());
  EXPECT_EQ(tok->encode(*text, /*addSpecialTokens=*/false),
            chat["ids"].get<std::vector<int64_t>>());
}

TEST_P(TokenizerFixture, StreamingMatchesDecode) {
  std::vector<std::vector<int64_t>> all;
  for (const auto &c : readJson(dir + "/tokenizer_cases.json"))
    all.push_back(c["ids"].get<std::vector<int64_t>>());
  json ref = readJson(dir + "/reference.json");
  all.push_back(ref["prompt_ids"].get<std::vector<int64_t>>());
  all.push_back(ref["chat"]["ids"].get<std::vector<int64_t>>());
  if (ref.contains("greedy_ids"))
    all.push_back(ref["greedy_ids"].get<std::vector<int64_t>>());
  for (const auto &ids : all) {
    std::string expected = tok->decode(ids);
    EXPECT_EQ(stream(ids), expected);
  }
}

TEST_P(TokenizerFixture, StreamingHoldsPartialCharacters) {
  // Every family splits these into byte pieces (byte-level BPE or <0xNN>).
  for (std::string text : {"你好世界", "🙂👍🏽", "café naïve"}) {
    auto ids = tok->encode(text, false);
    kt::StreamDecoder dec(*tok);
    std::string all;
    size_t held = 0; // pushes that returned nothing (bytes kept back)
    for (int64_t id : ids) {
      std::string piece = dec.push(id);
      EXPECT_TRUE(isCompleteUtf8(piece));
      held += piece.empty();
      all += piece;
    }
    all += dec.finish();
    EXPECT_EQ(all, tok->decode(ids));
    EXPECT_GT(held, 0u) << text;
  }
}

TEST_P(TokenizerFixture, SpecialTokens) {
  json cfg = readJson(dir + "/tokenizer_config.json");
  json tj = readJson(dir + "/tokenizer.json");
  int64_t maxId = -1;
  for (const auto &[k, v] : tj["model"]["vocab"].items())
    maxId = std::max<int64_t>(maxId, v.get<int64_t>());
  for (const auto &a : tj["added_tokens"]) {
    maxId = std::max<int64_t>(maxId, a["id"].get<int64_t>());
    EXPECT_EQ(tok->tokenId(a["content"].get<std::string>()),
              a["id"].get<int64_t>());
    EXPECT_EQ(tok->isSpecial(a["id"]), a["special"].get<bool>());
  }
  EXPECT_EQ(tok->vocabSize(), maxId + 1);
  ASSERT_TRUE(tok->eosId().has_value());
  EXPECT_EQ(*tok->eosId(), *tok->tokenId(cfg["eos_token"].get<std::string>()));
  if (cfg.contains("bos_token") && !cfg["bos_token"].is_null())
    EXPECT_EQ(tok->bosId(), tok->tokenId(cfg["bos_token"].get<std::string>()));
  else
    EXPECT_FALSE(tok->bosId().has_value());
  // Special tokens disappear with skipSpecialTokens.
  std::vector<int64_t> ids = tok->encode("hi");
  ids.push_back(*tok->eosId());
  EXPECT_EQ(tok->decode(ids, /*skipSpecialTokens=*/true), "hi");
}

std::vector<std::string> fixtureModels() {
  return {"deepseek-v2",     "deepseek-v3", "qwen2-moe", "qwen3-moe",
          "qwen3-moe-fused", "mixtral",     "llama",     "qwen3"};
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerFixture,
                         ::testing::ValuesIn(fixtureModels()),
                         [](const ::testing::TestParamInfo<std::string> &info) {
                           std::string name;
                           for (char c : info.param)
                             name += std::isalnum(static_cast<unsigned char>(c))
                                         ? c
                                         : '_';
                           return name;
                         });

} // namespace

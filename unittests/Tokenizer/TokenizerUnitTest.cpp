//===- TokenizerUnitTest.cpp - tokenizer features and bad input -----------===//

#include "kt/Runtime/Tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A tiny tokenizer.json: single characters a-z, digits, space-ish symbols.
json tinyTokenizer() {
  json vocab = json::object();
  int64_t id = 0;
  for (char c = 'a'; c <= 'z'; ++c)
    vocab[std::string(1, c)] = id++;
  for (char c = '0'; c <= '9'; ++c)
    vocab[std::string(1, c)] = id++;
  vocab["\xE2\x96\x81"] = id++; // ▁
  vocab["ab"] = id++;
  vocab["abc"] = id++;
  vocab["\xE2\x96\x81"
        "a"] = id++;
  vocab["<unk>"] = id++;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = id++;
  }
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", json::array({json::array({"a", "b"}), "ab c",
                                        "\xE2\x96\x81 a"})},
                {"unk_token", "<unk>"},
                {"byte_fallback", false},
                {"fuse_unk", true}}}};
}

kt::Tokenizer make(const json &j, const std::string &config = "") {
  auto t = kt::Tokenizer::fromJson(j.dump(), config);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return std::move(t).value();
}

std::string errorOf(const json &j) {
  auto t = kt::Tokenizer::fromJson(j.dump());
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.error().message;
}

TEST(TokenizerUnit, MergesInBothForms) {
  kt::Tokenizer tok = make(tinyTokenizer());
  auto abc = *tok.tokenId("abc");
  EXPECT_EQ(tok.encode("abc"), std::vector<int64_t>({abc}));
  EXPECT_EQ(tok.encode("abab"),
            std::vector<int64_t>({*tok.tokenId("ab"), *tok.tokenId("ab")}));
}

TEST(TokenizerUnit, UnknownCharactersFuseIntoOneUnk) {
  kt::Tokenizer tok = make(tinyTokenizer());
  auto unk = *tok.tokenId("<unk>");
  EXPECT_EQ(tok.encode("a!?b"),
            std::vector<int64_t>({*tok.tokenId("a"), unk, *tok.tokenId("b")}));
}

TEST(TokenizerUnit, ByteFallback) {
  json j = tinyTokenizer();
  j["model"]["byte_fallback"] = true;
  kt::Tokenizer tok = make(j);
  EXPECT_EQ(
      tok.encode("\xC3\xA9"), // é
      std::vector<int64_t>({*tok.tokenId("<0xC3>"), *tok.tokenId("<0xA9>")}));
}

TEST(TokenizerUnit, IgnoreMerges) {
  json j = tinyTokenizer();
  j["model"]["merges"] = json::array();
  kt::Tokenizer plain = make(j);
  EXPECT_EQ(plain.encode("abc").size(), 3u);
  j["model"]["ignore_merges"] = true;
  kt::Tokenizer direct = make(j);
  EXPECT_EQ(direct.encode("abc"),
            std::vector<int64_t>({*direct.tokenId("abc")}));
}

TEST(TokenizerUnit, MetaspacePrependSchemes) {
  json j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\xE2\x96\x81"},
                        {"prepend_scheme", "always"},
                        {"split", false}};
  j["added_tokens"] = json::array({{{"id", 1000},
                                    {"content", "<x>"},
                                    {"special", true},
                                    {"normalized", false},
                                    {"lstrip", false},
                                    {"rstrip", false},
                                    {"single_word", false}}});
  auto meta = [](const kt::Tokenizer &t) {
    return *t.tokenId("\xE2\x96\x81"
                      "a");
  };
  kt::Tokenizer always = make(j);
  EXPECT_EQ(always.encode("<x>a"), std::vector<int64_t>({1000, meta(always)}));
  j["pre_tokenizer"]["prepend_scheme"] = "first";
  kt::Tokenizer first = make(j);
  EXPECT_EQ(first.encode("a"), std::vector<int64_t>({meta(first)}));
  EXPECT_EQ(first.encode("<x>a"),
            std::vector<int64_t>({1000, *first.tokenId("a")}));
  j["pre_tokenizer"]["prepend_scheme"] = "never";
  kt::Tokenizer never = make(j);
  EXPECT_EQ(never.encode("a"), std::vector<int64_t>({*never.tokenId("a")}));
}

TEST(TokenizerUnit, NormalizerSequencePrependReplace) {
  json j = tinyTokenizer();
  j["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                    {{"type", "Replace"},
                     {"pattern", {{"String", " "}}},
                     {"content", "\xE2\x96\x81"}}})}};
  j["decoder"] = {
      {"type", "Sequence"},
      {"decoders", json::array({{{"type", "Replace"},
                                 {"pattern", {{"String", "\xE2\x96\x81"}}},
                                 {"content", " "}},
                                {{"type", "ByteFallback"}},
                                {{"type", "Fuse"}},
                                {{"type", "Strip"},
                                 {"content", " "},
                                 {"start", 1},
                                 {"stop", 0}}})}};
  kt::Tokenizer tok = make(j);
  auto ids = tok.encode("a b");
  EXPECT_EQ(ids, std::vector<int64_t>({*tok.tokenId("\xE2\x96\x81"
                                                    "a"),
                                       *tok.tokenId("\xE2\x96\x81"),
                                       *tok.tokenId("b")}));
  EXPECT_EQ(tok.decode(ids), "a b");
}

TEST(TokenizerUnit, DigitsAndByteLevelRegex) {
  json j = tinyTokenizer();
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Digits"}, {"individual_digits", true}},
                    {{"type", "ByteLevel"},
                     {"add_prefix_space", false},
                     {"use_regex", true}}})}};
  j["model"]["vocab"]["\xC4\xA0"
                      "a"] = 5000;        // "Ġa"
  j["model"]["vocab"]["\xC4\xA0"] = 5001; // "Ġ"
  j["model"]["merges"].push_back("\xC4\xA0 a");
  j["decoder"] = {{"type", "ByteLevel"}};
  kt::Tokenizer tok = make(j);
  auto ids = tok.encode("12 a");
  EXPECT_EQ(ids,
            std::vector<int64_t>({*tok.tokenId("1"), *tok.tokenId("2"), 5000}));
  EXPECT_EQ(tok.decode(ids), "12 a");
}

TEST(TokenizerUnit, AddedTokensLongestMatchAndStrip) {
  json j = tinyTokenizer();
  auto added = [](int64_t id, std::string content, bool lstrip, bool rstrip) {
    return json{{"id", id},
                {"content", content},
                {"special", true},
                {"normalized", false},
                {"lstrip", lstrip},
                {"rstrip", rstrip},
                {"single_word", false}};
  };
  j["added_tokens"] = json::array({added(900, "<a>", false, false),
                                   added(901, "<a>b", false, false),
                                   added(902, "<m>", true, true)});
  kt::Tokenizer tok = make(j);
  EXPECT_EQ(tok.encode("<a>b<a>"), std::vector<int64_t>({901, 900}));
  EXPECT_EQ(tok.encode("a  <m>  b"),
            std::vector<int64_t>({*tok.tokenId("a"), 902, *tok.tokenId("b")}));
  EXPECT_TRUE(tok.isSpecial(900));
  EXPECT_EQ(tok.vocabSize(), 903);
}

TEST(TokenizerUnit, NfcNormalizer) {
  json j = tinyTokenizer();
  j["normalizer"] = {{"type", "NFC"}};
  j["model"]["vocab"]["\xC3\xA9"] = 6000; // é (composed)
  kt::Tokenizer tok = make(j);
  EXPECT_EQ(tok.encode("e\xCC\x81"),
            std::vector<int64_t>({6000})); // e + U+0301
}

TEST(TokenizerUnit, InvalidUtf8InputIsRepaired) {
  json j = tinyTokenizer();
  j["model"]["byte_fallback"] = true;
  kt::Tokenizer tok = make(j);
  auto ids = tok.encode(std::string("a\xFF"
                                    "b"));
  EXPECT_EQ(ids.front(), *tok.tokenId("a"));
  EXPECT_EQ(ids.back(), *tok.tokenId("b"));
  EXPECT_EQ(ids.size(), 5u); // a, EF BF BD (U+FFFD) as bytes, b
}

TEST(TokenizerUnit, TemplateProcessingAndConfigBos) {
  json j = tinyTokenizer();
  j["added_tokens"] = json::array({{{"id", 700},
                                    {"content", "<s>"},
                                    {"special", true},
                                    {"normalized", false}},
                                   {{"id", 701},
                                    {"content", "</s>"},
                                    {"special", true},
                                    {"normalized", false}}});
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens",
       {{"<s>", {{"id", "<s>"}, {"ids", {700}}, {"tokens", {"<s>"}}}}}}};
  kt::Tokenizer tok = make(j);
  EXPECT_EQ(tok.encode("a"), std::vector<int64_t>({700, *tok.tokenId("a")}));
  EXPECT_EQ(tok.encode("a", false), std::vector<int64_t>({*tok.tokenId("a")}));
  EXPECT_EQ(tok.bosId(), 700);
  kt::Tokenizer noBos =
      make(j, R"({"bos_token": "<s>", "eos_token": {"content": "</s>"},
                                   "add_bos_token": false, "add_eos_token": true})");
  EXPECT_EQ(noBos.encode("a"), std::vector<int64_t>({*tok.tokenId("a"), 701}));
  EXPECT_EQ(noBos.eosId(), 701);
}

TEST(TokenizerUnit, ChatTemplateErrors) {
  kt::Tokenizer none = make(tinyTokenizer());
  auto r = none.applyChatTemplate({{"user", "hi"}}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no chat_template"), std::string::npos);
  EXPECT_NE(r.error().message.find("chatml"), std::string::npos);
  EXPECT_EQ(none.chatFamily(), "");

  kt::Tokenizer odd =
      make(tinyTokenizer(), R"({"chat_template": "{{ messages }}"})");
  r = odd.applyChatTemplate({{"user", "hi"}}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("llama3"), std::string::npos);
}

TEST(TokenizerUnit, ChatmlDefaultSystemPrompt) {
  std::string config =
      json{{"chat_template",
            "{% if messages[0]['role'] != 'system' %}{{ "
            "'<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{% endif %}"
            "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + "
            "m['content'] + '<|im_end|>\\n'}}{% endfor %}"}}
          .dump();
  kt::Tokenizer tok = make(tinyTokenizer(), config);
  EXPECT_EQ(tok.chatFamily(), "chatml");
  auto r = tok.applyChatTemplate({{"user", "hi"}}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(
      *r, "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi"
          "<|im_end|>\n<|im_start|>assistant\n");
  r = tok.applyChatTemplate({{"system", "S"}, {"user", "hi"}}, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(
      *r, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
}

//===----------------------------------------------------------------------===//
// Bad input
//===----------------------------------------------------------------------===//

TEST(TokenizerBadInput, MissingTokenizerJson) {
  auto t = kt::Tokenizer::load("/nonexistent/kt-tokenizer-dir");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerBadInput, MalformedJson) {
  fs::path dir = fs::temp_directory_path() / "kt-tokenizer-malformed";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << "{\"model\": {\"type\": \"BPE\", ";
  auto t = kt::Tokenizer::load(dir.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.rfind("tokenizer.json: malformed JSON", 0), 0u)
      << t.error().message;

  std::ofstream(dir / "tokenizer.json") << tinyTokenizer().dump();
  std::ofstream(dir / "tokenizer_config.json") << "{oops";
  t = kt::Tokenizer::load(dir.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.rfind("tokenizer_config.json: malformed JSON", 0),
            0u)
      << t.error().message;
  fs::remove_all(dir);
}

TEST(TokenizerBadInput, UnsupportedModelType) {
  json j = tinyTokenizer();
  j["model"]["type"] = "Unigram";
  EXPECT_EQ(errorOf(j),
            "tokenizer.json: model.type 'Unigram' is not supported (BPE only)");
}

TEST(TokenizerBadInput, BadRegex) {
  json j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(\\p{L}+"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  std::string msg = errorOf(j);
  EXPECT_NE(
      msg.find("tokenizer.json: pre_tokenizer Split: bad regex '(\\p{L}+'"),
      std::string::npos)
      << msg;
}

TEST(TokenizerBadInput, UnsupportedComponentsAndShapes) {
  json j = tinyTokenizer();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_NE(
      errorOf(j).find("normalizer type 'BertNormalizer' is not supported"),
      std::string::npos);
  j = tinyTokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(errorOf(j).find("decoder type 'WordPiece'"), std::string::npos);
  j = tinyTokenizer();
  j["model"]["merges"] = json::array({"a"});
  EXPECT_NE(errorOf(j).find("model.merges[0]"), std::string::npos);
  j = tinyTokenizer();
  j["model"]["vocab"] = json::array();
  EXPECT_NE(errorOf(j).find("model.vocab"), std::string::npos);
  j = tinyTokenizer();
  j["added_tokens"] = json::array({{{"content", 3}}});
  EXPECT_NE(errorOf(j).find("added_tokens"), std::string::npos);
  j = tinyTokenizer();
  j["model"]["fuse_unk"] = "yes"; // wrong type: caught, not thrown
  EXPECT_NE(errorOf(j).find("tokenizer.json"), std::string::npos);
  EXPECT_NE(errorOf(json::array()).find("not a JSON object"),
            std::string::npos);
}

TEST(TokenizerBadInput, DecodeIgnoresUnknownIds) {
  kt::Tokenizer tok = make(tinyTokenizer());
  EXPECT_EQ(tok.decode({-5, 123456789, 0}), "a");
  EXPECT_FALSE(tok.idToToken(-1).has_value());
}

} // namespace

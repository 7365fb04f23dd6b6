//===- Normalizer.cpp - tokenizer.json normalizers ------------------------===//

#include "Normalizer.h"

#include "JsonUtil.h"
#include "Regex.h"
#include "Unicode.h"

#include <vector>

namespace kt::tok {

namespace {

class UnicodeNormalizer : public Normalizer {
public:
  explicit UnicodeNormalizer(NormalForm form) : form(form) {}
  std::string normalize(std::string text) const override {
    return normalizeUnicode(text, form);
  }

private:
  NormalForm form;
};

class LowercaseNormalizer : public Normalizer {
public:
  std::string normalize(std::string text) const override {
    return toLowerUnicode(text);
  }
};

/// Prepends a string to non-empty text (Llama-2's "▁").
class PrependNormalizer : public Normalizer {
public:
  explicit PrependNormalizer(std::string prefix) : prefix(std::move(prefix)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix + text;
  }

private:
  std::string prefix;
};

class ReplaceNormalizer : public Normalizer {
public:
  ReplaceNormalizer(Regex re, std::string content)
      : re(std::move(re)), content(std::move(content)) {}
  std::string normalize(std::string text) const override {
    std::string out;
    size_t prev = 0;
    for (auto [b, e] : re.findAll(text)) {
      out.append(text, prev, b - prev);
      out += content;
      prev = e;
    }
    out.append(text, prev, std::string::npos);
    return out;
  }

private:
  Regex re;
  std::string content;
};

class StripNormalizer : public Normalizer {
public:
  StripNormalizer(bool left, bool right) : left(left), right(right) {}
  std::string normalize(std::string text) const override {
    size_t b = 0, e = text.size();
    if (left) {
      for (size_t i = 0; i < e;) {
        size_t next = i;
        if (!isWhitespace(nextCodePoint(text, next)))
          break;
        b = i = next;
      }
    }
    if (right) {
      while (e > b) {
        size_t start = e - 1;
        while (start > b &&
               (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
          --start;
        size_t i = start;
        if (!isWhitespace(nextCodePoint(text, i)))
          break;
        e = start;
      }
    }
    return text.substr(b, e - b);
  }

private:
  bool left, right;
};

class SequenceNormalizer : public Normalizer {
public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto &p : parts)
      text = p->normalize(std::move(text));
    return text;
  }

private:
  std::vector<std::unique_ptr<Normalizer>> parts;
};

} // namespace

std::unique_ptr<Normalizer> parseNormalizer(const json &j, std::string &error) {
  std::string type = typeOf(j);
  if (type == "NFC")
    return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD")
    return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC")
    return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD")
    return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase")
    return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend")
    return std::make_unique<PrependNormalizer>(getString(j, "prepend"));
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(getBool(j, "strip_left", true),
                                             getBool(j, "strip_right", true));
  if (type == "Replace") {
    std::string pattern;
    bool isRegex = false;
    if (!j.contains("pattern") || !getPattern(j["pattern"], pattern, isRegex)) {
      error = "normalizer Replace has no pattern";
      return nullptr;
    }
    std::string reError;
    auto re = Regex::compile(pattern, !isRegex, reError);
    if (!re) {
      error = "normalizer Replace: bad regex '" + pattern + "': " + reError;
      return nullptr;
    }
    return std::make_unique<ReplaceNormalizer>(std::move(*re),
                                               getString(j, "content"));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) {
      error = "normalizer Sequence has no 'normalizers' list";
      return nullptr;
    }
    for (const auto &sub : *it) {
      auto p = parseNormalizer(sub, error);
      if (!p)
        return nullptr;
      parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  error = "normalizer type '" + type +
          "' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
          "Replace, Strip, Sequence)";
  return nullptr;
}

} // namespace kt::tok

//===- PreTokenizer.cpp - tokenizer.json pre-tokenizers -------------------===//

#include "PreTokenizer.h"

#include "JsonUtil.h"
#include "Regex.h"
#include "Unicode.h"

#include <algorithm>

namespace kt::tok {

namespace {

// GPT-2's pattern, used by ByteLevel when use_regex is set.
constexpr const char *kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char *kSpaceReplacement = "\xE2\x96\x81"; // U+2581 '▁'

enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

/// Cuts [0, len) at the matches following Hugging Face's
/// SplitDelimiterBehavior.
std::vector<Span> splitAt(size_t len, const std::vector<Span> &found,
                          SplitBehavior behavior, bool invert) {
  // Every byte of the text in a range, each marked as a match or not.
  std::vector<std::pair<Span, bool>> ranges;
  size_t prev = 0;
  for (auto [b, e] : found) {
    if (b > prev)
      ranges.push_back({{prev, b}, false});
    ranges.push_back({{b, e}, true});
    prev = e;
  }
  if (prev < len || ranges.empty())
    ranges.push_back({{prev, len}, false});
  if (invert)
    for (auto &r : ranges)
      r.second = !r.second;

  std::vector<std::pair<Span, bool>> merged;
  switch (behavior) {
  case SplitBehavior::Isolated:
  case SplitBehavior::Removed:
    merged = ranges;
    break;
  case SplitBehavior::Contiguous: {
    bool prevMatch = false;
    for (auto &r : ranges) {
      if (r.second && prevMatch && !merged.empty())
        merged.back().first.second = r.first.second;
      else
        merged.push_back(r);
      prevMatch = r.second;
    }
    break;
  }
  case SplitBehavior::MergedWithPrevious: {
    bool prevMatch = false;
    for (auto &r : ranges) {
      if (r.second && !prevMatch && !merged.empty())
        merged.back().first.second = r.first.second;
      else
        merged.push_back(r);
      prevMatch = r.second;
    }
    break;
  }
  case SplitBehavior::MergedWithNext: {
    bool prevMatch = false;
    for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
      if (it->second && !prevMatch && !merged.empty())
        merged.back().first.first = it->first.first;
      else
        merged.push_back(*it);
      prevMatch = it->second;
    }
    std::reverse(merged.begin(), merged.end());
    break;
  }
  }
  std::vector<Span> out;
  for (auto &[span, isMatch] : merged) {
    if (span.second <= span.first)
      continue;
    if (behavior == SplitBehavior::Removed && isMatch)
      continue;
    out.push_back(span);
  }
  return out;
}

void splitPieces(std::vector<Piece> &pieces, const Regex &re,
                 SplitBehavior behavior, bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (auto &p : pieces) {
    for (auto [b, e] :
         splitAt(p.text.size(), re.findAll(p.text), behavior, invert))
      out.push_back({p.text.substr(b, e - b), p.atStart && b == 0});
  }
  pieces = std::move(out);
}

class SplitPreTokenizer : public PreTokenizer {
public:
  SplitPreTokenizer(Regex re, SplitBehavior behavior, bool invert)
      : re(std::move(re)), behavior(behavior), invert(invert) {}
  void apply(std::vector<Piece> &pieces) const override {
    splitPieces(pieces, re, behavior, invert);
  }

private:
  Regex re;
  SplitBehavior behavior;
  bool invert;
};

class ByteLevelPreTokenizer : public PreTokenizer {
public:
  ByteLevelPreTokenizer(bool addPrefixSpace, std::optional<Regex> re)
      : addPrefixSpace(addPrefixSpace), re(std::move(re)) {}
  void apply(std::vector<Piece> &pieces) const override {
    if (addPrefixSpace)
      for (auto &p : pieces)
        if (p.text.empty() || p.text[0] != ' ')
          p.text.insert(0, " ");
    if (re)
      splitPieces(pieces, *re, SplitBehavior::Isolated, false);
    const auto &map = byteToUnicode();
    for (auto &p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char c : p.text)
        mapped += map[c];
      p.text = std::move(mapped);
    }
  }

private:
  bool addPrefixSpace;
  std::optional<Regex> re;
};

enum class PrependScheme { First, Always, Never };

class MetaspacePreTokenizer : public PreTokenizer {
public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme,
                        std::optional<Regex> splitRe)
      : replacement(std::move(replacement)), scheme(scheme),
        splitRe(std::move(splitRe)) {}
  void apply(std::vector<Piece> &pieces) const override {
    for (auto &p : pieces) {
      std::string text;
      text.reserve(p.text.size() + 8);
      for (char c : p.text) {
        if (c == ' ')
          text += replacement;
        else
          text += c;
      }
      bool startsWithReplacement =
          text.compare(0, replacement.size(), replacement) == 0;
      if (!startsWithReplacement &&
          (scheme == PrependScheme::Always ||
           (scheme == PrependScheme::First && p.atStart)))
        text.insert(0, replacement);
      p.text = std::move(text);
    }
    if (splitRe)
      splitPieces(pieces, *splitRe, SplitBehavior::MergedWithNext, false);
  }

private:
  std::string replacement;
  PrependScheme scheme;
  std::optional<Regex> splitRe;
};

class SequencePreTokenizer : public PreTokenizer {
public:
  explicit SequencePreTokenizer(
      std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts(std::move(parts)) {}
  void apply(std::vector<Piece> &pieces) const override {
    for (const auto &p : parts)
      p->apply(pieces);
  }

private:
  std::vector<std::unique_ptr<PreTokenizer>> parts;
};

std::optional<Regex> compileOrError(const std::string &pattern, bool literal,
                                    const std::string &what,
                                    std::string &error) {
  std::string reError;
  auto re = Regex::compile(pattern, literal, reError);
  if (!re)
    error = what + ": bad regex '" + pattern + "': " + reError;
  return re;
}

} // namespace

std::unique_ptr<PreTokenizer> parsePreTokenizer(const json &j,
                                                std::string &error) {
  std::string type = typeOf(j);
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      error = "pre_tokenizer Sequence has no 'pretokenizers' list";
      return nullptr;
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto &sub : *it) {
      auto p = parsePreTokenizer(sub, error);
      if (!p)
        return nullptr;
      parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    std::string pattern;
    bool isRegex = false;
    if (!j.contains("pattern") || !getPattern(j["pattern"], pattern, isRegex)) {
      error = "pre_tokenizer Split has no String or Regex pattern";
      return nullptr;
    }
    std::string b = getString(j, "behavior", "Isolated");
    SplitBehavior behavior;
    if (b == "Isolated")
      behavior = SplitBehavior::Isolated;
    else if (b == "Removed")
      behavior = SplitBehavior::Removed;
    else if (b == "MergedWithPrevious")
      behavior = SplitBehavior::MergedWithPrevious;
    else if (b == "MergedWithNext")
      behavior = SplitBehavior::MergedWithNext;
    else if (b == "Contiguous")
      behavior = SplitBehavior::Contiguous;
    else {
      error = "pre_tokenizer Split: unknown behavior '" + b + "'";
      return nullptr;
    }
    auto re = compileOrError(pattern, !isRegex, "pre_tokenizer Split", error);
    if (!re)
      return nullptr;
    return std::make_unique<SplitPreTokenizer>(std::move(*re), behavior,
                                               getBool(j, "invert", false));
  }
  if (type == "ByteLevel") {
    std::optional<Regex> re;
    if (getBool(j, "use_regex", true)) {
      re =
          compileOrError(kGpt2Pattern, false, "pre_tokenizer ByteLevel", error);
      if (!re)
        return nullptr;
    }
    return std::make_unique<ByteLevelPreTokenizer>(
        getBool(j, "add_prefix_space", true), std::move(re));
  }
  if (type == "Digits") {
    bool individual = getBool(j, "individual_digits", false);
    auto re = compileOrError(individual ? "\\p{N}" : "\\p{N}+", false,
                             "pre_tokenizer Digits", error);
    if (!re)
      return nullptr;
    return std::make_unique<SplitPreTokenizer>(std::move(*re),
                                               SplitBehavior::Isolated, false);
  }
  if (type == "Whitespace" || type == "WhitespaceSplit") {
    // Whitespace keeps \w+ and [^\w\s]+ runs; WhitespaceSplit drops spaces.
    const char *pattern = type == "Whitespace" ? "\\w+|[^\\w\\s]+" : "\\s+";
    auto re = compileOrError(pattern, false, "pre_tokenizer " + type, error);
    if (!re)
      return nullptr;
    return std::make_unique<SplitPreTokenizer>(
        std::move(*re), SplitBehavior::Removed, type == "Whitespace");
  }
  if (type == "Metaspace") {
    std::string replacement = getString(j, "replacement", kSpaceReplacement);
    PrependScheme scheme = PrependScheme::Always;
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      std::string s = j["prepend_scheme"].get<std::string>();
      if (s == "first")
        scheme = PrependScheme::First;
      else if (s == "always")
        scheme = PrependScheme::Always;
      else if (s == "never")
        scheme = PrependScheme::Never;
      else {
        error = "pre_tokenizer Metaspace: unknown prepend_scheme '" + s + "'";
        return nullptr;
      }
    } else if (!getBool(j, "add_prefix_space", true)) {
      scheme = PrependScheme::Never;
    }
    std::optional<Regex> splitRe;
    if (getBool(j, "split", true)) {
      splitRe =
          compileOrError(replacement, true, "pre_tokenizer Metaspace", error);
      if (!splitRe)
        return nullptr;
    }
    return std::make_unique<MetaspacePreTokenizer>(replacement, scheme,
                                                   std::move(splitRe));
  }
  error = "pre_tokenizer type '" + type +
          "' is not supported (Sequence, Split, ByteLevel, Digits, Metaspace, "
          "Whitespace, WhitespaceSplit)";
  return nullptr;
}

} // namespace kt::tok

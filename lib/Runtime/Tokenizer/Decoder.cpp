//===- Decoder.cpp - tokenizer.json decoders ------------------------------===//

#include "Decoder.h"

#include "JsonUtil.h"
#include "Regex.h"
#include "Unicode.h"

namespace kt::tok {

namespace {

constexpr const char *kReplacementChar = "\xEF\xBF\xBD";

/// Maps every character back to its byte; a token with a character outside
/// the byte map contributes its own UTF-8 bytes (added tokens such as
/// "<｜User｜>"). The result is repaired as lossy UTF-8.
class ByteLevelDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::string bytes;
    for (const auto &t : tokens) {
      size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size();) {
        int b = unicodeToByte(nextCodePoint(t, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes += static_cast<char>(b);
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8Lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
public:
  ReplaceDecoder(Regex re, std::string content)
      : re(std::move(re)), content(std::move(content)) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (auto &t : tokens) {
      std::string out;
      size_t prev = 0;
      for (auto [b, e] : re.findAll(t)) {
        out.append(t, prev, b - prev);
        out += content;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

private:
  Regex re;
  std::string content;
};

/// Turns runs of <0xNN> tokens into their bytes when those form valid UTF-8,
/// else into one U+FFFD per byte token.
class ByteFallbackDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pendingCount = 0;
    auto flush = [&] {
      if (pendingCount == 0)
        return;
      if (isValidUtf8(pending))
        out.push_back(pending);
      else
        for (size_t i = 0; i < pendingCount; ++i)
          out.push_back(kReplacementChar);
      pending.clear();
      pendingCount = 0;
    };
    for (auto &t : tokens) {
      int byte = parseByteToken(t);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        ++pendingCount;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }

  static int parseByteToken(const std::string &t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>')
      return -1;
    auto hex = [](char c) {
      if (c >= '0' && c <= '9')
        return c - '0';
      if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
      if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
      return -1;
    };
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::string all;
    for (const auto &t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
  }
};

/// Removes up to `start` leading and `stop` trailing `content` characters
/// from every token.
class StripDecoder : public Decoder {
public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content(std::move(content)), start(start), stop(stop) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    if (content.empty())
      return;
    for (auto &t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0;
           k < start && t.compare(b, content.size(), content) == 0; ++k)
        b += content.size();
      for (size_t k = 0;
           k < stop && e >= b + content.size() &&
           t.compare(e - content.size(), content.size(), content) == 0;
           ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  }

private:
  std::string content;
  size_t start, stop;
};

/// Metaspace: replacement -> ' ', and the first token loses the space that
/// the pre-tokenizer prepended.
class MetaspaceDecoder : public Decoder {
public:
  MetaspaceDecoder(std::string replacement, bool stripFirst)
      : replacement(std::move(replacement)), stripFirst(stripFirst) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      std::string out;
      size_t pos = 0;
      if (i == 0 && stripFirst &&
          t.compare(0, replacement.size(), replacement) == 0)
        pos = replacement.size();
      while (pos < t.size()) {
        size_t hit = t.find(replacement, pos);
        if (hit == std::string::npos) {
          out.append(t, pos, std::string::npos);
          break;
        }
        out.append(t, pos, hit - pos);
        out += ' ';
        pos = hit + replacement.size();
      }
      t = std::move(out);
    }
  }

private:
  std::string replacement;
  bool stripFirst;
};

class SequenceDecoder : public Decoder {
public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts(std::move(parts)) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (const auto &p : parts)
      p->decodeChain(tokens);
  }

private:
  std::vector<std::unique_ptr<Decoder>> parts;
};

} // namespace

std::unique_ptr<Decoder> parseDecoder(const json &j, std::string &error) {
  std::string type = typeOf(j);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback")
    return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse")
    return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto count = [&](const char *key) {
      auto it = j.find(key);
      return it != j.end() && it->is_number_integer() && it->get<int64_t>() > 0
                 ? static_cast<size_t>(it->get<int64_t>())
                 : size_t(0);
    };
    return std::make_unique<StripDecoder>(getString(j, "content", " "),
                                          count("start"), count("stop"));
  }
  if (type == "Replace") {
    std::string pattern;
    bool isRegex = false;
    if (!j.contains("pattern") || !getPattern(j["pattern"], pattern, isRegex)) {
      error = "decoder Replace has no pattern";
      return nullptr;
    }
    std::string reError;
    auto re = Regex::compile(pattern, !isRegex, reError);
    if (!re) {
      error = "decoder Replace: bad regex '" + pattern + "': " + reError;
      return nullptr;
    }
    return std::make_unique<ReplaceDecoder>(std::move(*re),
                                            getString(j, "content"));
  }
  if (type == "Metaspace") {
    bool stripFirst = getString(j, "prepend_scheme", "always") != "never" &&
                      getBool(j, "add_prefix_space", true);
    return std::make_unique<MetaspaceDecoder>(
        getString(j, "replacement", "\xE2\x96\x81"), stripFirst);
  }
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) {
      error = "decoder Sequence has no 'decoders' list";
      return nullptr;
    }
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto &sub : *it) {
      auto p = parseDecoder(sub, error);
      if (!p)
        return nullptr;
      parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  error = "decoder type '" + type +
          "' is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, "
          "Metaspace, Sequence)";
  return nullptr;
}

} // namespace kt::tok

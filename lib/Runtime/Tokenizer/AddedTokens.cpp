//===- AddedTokens.cpp - tokenizer.json added tokens ----------------------===//

#include "AddedTokens.h"

#include "Unicode.h"

#include <algorithm>

namespace kt::tok {

namespace {

/// Start of the character that ends just before `pos`.
size_t prevCharStart(std::string_view s, size_t pos) {
  size_t i = pos - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
    --i;
  return i;
}

uint32_t charBefore(std::string_view s, size_t pos) {
  size_t i = prevCharStart(s, pos);
  return nextCodePoint(s, i);
}

} // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> toks)
    : tokens(std::move(toks)) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!tokens[i].content.empty())
      byFirstByte[static_cast<unsigned char>(tokens[i].content[0])].push_back(
          i);
  for (auto &list : byFirstByte)
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return tokens[a].content.size() > tokens[b].content.size();
    });
}

std::vector<AddedTokenMatcher::Segment>
AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t textStart = 0; // start of the pending plain text
  for (size_t pos = 0; pos < text.size();) {
    const auto &cands = byFirstByte[static_cast<unsigned char>(text[pos])];
    const AddedToken *hit = nullptr;
    for (size_t idx : cands) {
      const AddedToken &t = tokens[idx];
      if (text.compare(pos, t.content.size(), t.content) != 0)
        continue;
      if (t.singleWord) {
        size_t end = pos + t.content.size();
        if (pos > 0 && isWordChar(charBefore(text, pos)))
          continue;
        size_t i = end;
        if (end < text.size() && isWordChar(nextCodePoint(text, i)))
          continue;
      }
      hit = &t;
      break;
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + hit->content.size();
    if (hit->lstrip)
      while (begin > textStart && isWhitespace(charBefore(text, begin)))
        begin = prevCharStart(text, begin);
    if (hit->rstrip) {
      while (end < text.size()) {
        size_t i = end;
        if (!isWhitespace(nextCodePoint(text, i)))
          break;
        end = i;
      }
    }
    if (begin > textStart)
      out.push_back({textStart, begin, -1});
    out.push_back({begin, end, hit->id});
    textStart = pos = end;
  }
  if (textStart < text.size())
    out.push_back({textStart, text.size(), -1});
  return out;
}

} // namespace kt::tok

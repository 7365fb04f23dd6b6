//===- Unicode.cpp - UTF-8 helpers for the tokenizer ----------------------===//

#include "Unicode.h"

#include <utf8proc.h>

#include <cstdlib>

namespace kt::tok {

size_t validCharLen(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80)
    return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0)
      lo = 0xA0;
    else if (b == 0xED)
      hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0)
      lo = 0x90;
    else if (b == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size())
    return 0;
  auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi)
    return 0;
  for (size_t k = 2; k < len; ++k) {
    auto bk = static_cast<unsigned char>(s[i + k]);
    if (bk < 0x80 || bk > 0xBF)
      return 0;
  }
  return len;
}

uint32_t nextCodePoint(std::string_view s, size_t &i) {
  size_t len = validCharLen(s, i);
  if (len == 0) {
    ++i;
    return 0xFFFD;
  }
  auto b = static_cast<unsigned char>(s[i]);
  uint32_t cp = len == 1   ? b
                : len == 2 ? (b & 0x1F)
                : len == 3 ? (b & 0x0F)
                           : (b & 0x07);
  for (size_t k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = validCharLen(s, i);
    if (len == 0)
      return false;
    i += len;
  }
  return true;
}

std::string utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = validCharLen(s, i);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    // Skip the longest prefix of a well-formed sequence (at least one byte),
    // as String::from_utf8_lossy does.
    auto b = static_cast<unsigned char>(s[i]);
    size_t want = b >= 0xF0 && b <= 0xF4   ? 4
                  : b >= 0xE0 && b <= 0xEF ? 3
                  : b >= 0xC2 && b <= 0xDF ? 2
                                           : 1;
    size_t skip = 1;
    if (want > 1) {
      unsigned char lo = 0x80, hi = 0xBF;
      if (b == 0xE0)
        lo = 0xA0;
      else if (b == 0xED)
        hi = 0x9F;
      else if (b == 0xF0)
        lo = 0x90;
      else if (b == 0xF4)
        hi = 0x8F;
      while (skip < want && i + skip < s.size()) {
        auto c = static_cast<unsigned char>(s[i + skip]);
        bool ok = skip == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
        if (!ok)
          break;
        ++skip;
      }
    }
    out += "\xEF\xBF\xBD";
    i += skip;
  }
  return out;
}

bool isWhitespace(uint32_t cp) {
  switch (cp) {
  case 0x09:
  case 0x0A:
  case 0x0B:
  case 0x0C:
  case 0x0D:
  case 0x20:
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000:
    return true;
  default:
    return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool isWordChar(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
           (cp >= 'A' && cp <= 'Z') || cp == '_';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_NO:
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_PC:
    return true;
  default:
    return false;
  }
}

namespace {
struct ByteMap {
  std::array<std::string, 256> toUnicode;
  std::array<int, 324> toByte; // mapped code points are all < 324
  ByteMap() {
    toByte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? b : 256 + extra++;
      appendUtf8(toUnicode[b], cp);
      toByte[cp] = b;
    }
  }
};
const ByteMap &byteMap() {
  static const ByteMap map;
  return map;
}
} // namespace

const std::array<std::string, 256> &byteToUnicode() {
  return byteMap().toUnicode;
}

int unicodeToByte(uint32_t cp) {
  return cp < byteMap().toByte.size() ? byteMap().toByte[cp] : -1;
}

std::string normalizeUnicode(std::string_view s, NormalForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
  case NormalForm::NFC:
    options |= UTF8PROC_COMPOSE;
    break;
  case NormalForm::NFD:
    options |= UTF8PROC_DECOMPOSE;
    break;
  case NormalForm::NFKC:
    options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    break;
  case NormalForm::NFKD:
    options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    break;
  }
  utf8proc_uint8_t *out = nullptr;
  utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(s.data()),
                   static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(options));
  if (n < 0) {
    std::free(out);
    return std::string(s);
  }
  std::string result(reinterpret_cast<const char *>(out),
                     static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string toLowerUnicode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();)
    appendUtf8(out, static_cast<uint32_t>(utf8proc_tolower(
                        static_cast<utf8proc_int32_t>(nextCodePoint(s, i)))));
  return out;
}

} // namespace kt::tok

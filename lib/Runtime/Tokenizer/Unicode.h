//===- Unicode.h - UTF-8 helpers for the tokenizer --------------*- C++ -*-===//
//
// UTF-8 decoding/encoding, lossy repair (as Rust's String::from_utf8_lossy),
// GPT-2's byte <-> unicode map, Unicode normalisation forms (utf8proc).
//
//===----------------------------------------------------------------------===//

#ifndef KT_LIB_RUNTIME_TOKENIZER_UNICODE_H
#define KT_LIB_RUNTIME_TOKENIZER_UNICODE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kt::tok {

/// Length of the UTF-8 character starting at s[i] if it is a complete and
/// valid sequence, else 0.
size_t validCharLen(std::string_view s, size_t i);

/// Decodes the character at s[i] and advances i past it; an invalid byte
/// yields U+FFFD and advances by one.
uint32_t nextCodePoint(std::string_view s, size_t &i);

void appendUtf8(std::string &out, uint32_t cp);

bool isValidUtf8(std::string_view s);

/// Replaces every maximal invalid subsequence by U+FFFD.
std::string utf8Lossy(std::string_view bytes);

/// Unicode White_Space.
bool isWhitespace(uint32_t cp);

/// Letter, number or '_' (for added tokens' single_word).
bool isWordChar(uint32_t cp);

/// GPT-2's reversible byte -> printable character map, as UTF-8 strings.
const std::array<std::string, 256> &byteToUnicode();
/// The byte a mapped character stands for, or -1.
int unicodeToByte(uint32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
/// Normalises valid UTF-8 text (returns it unchanged if utf8proc refuses).
std::string normalizeUnicode(std::string_view s, NormalForm form);
std::string toLowerUnicode(std::string_view s);

} // namespace kt::tok

#endif // KT_LIB_RUNTIME_TOKENIZER_UNICODE_H

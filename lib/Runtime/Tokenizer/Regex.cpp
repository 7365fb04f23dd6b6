//===- Regex.cpp - PCRE2 regular expressions for the tokenizer ------------===//

#include "Regex.h"

#include <pcre2.h>

namespace kt::tok {

struct Regex::Code {
  pcre2_code *code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

std::optional<Regex> Regex::compile(std::string_view pattern, bool literal,
                                    std::string &error) {
  int errorCode = 0;
  PCRE2_SIZE errorOffset = 0;
  // PCRE2_LITERAL admits no UCP (nothing in a literal depends on it).
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code *code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                    pattern.size(), options, &errorCode, &errorOffset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(errorCode, buf, sizeof(buf));
    error = std::string(reinterpret_cast<const char *>(buf)) + " at offset " +
            std::to_string(errorOffset);
    return std::nullopt;
  }
  // JIT is an optimisation only; the interpreter is used where it fails.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Regex re;
  re.code = std::make_shared<Code>();
  re.code->code = code;
  return re;
}

std::vector<Span> Regex::findAll(std::string_view s) const {
  std::vector<Span> out;
  pcre2_match_data *md =
      pcre2_match_data_create_from_pattern(code->code, nullptr);
  if (!md)
    return out;
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t start = 0;
  while (start <= s.size()) {
    // The text is checked (or repaired) UTF-8 before it gets here.
    int rc = pcre2_match(code->code, subject, s.size(), start,
                         PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0)
      break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      start = e;
      continue;
    }
    // Empty match: move one character on.
    start = b + 1;
    while (start < s.size() &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      ++start;
  }
  pcre2_match_data_free(md);
  return out;
}

} // namespace kt::tok

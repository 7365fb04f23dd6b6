//===- NameRegex.cpp - re.search semantics on top of PCRE2 ----------------===//

#include "RulesInternal.h"

#include <pcre2.h>

#include <new>

using namespace kt::rules;
using namespace kt::rules::detail;

std::variant<std::shared_ptr<const NameRegex>, std::string>
NameRegex::compile(std::string_view pattern) {
  int errorCode = 0;
  PCRE2_SIZE errorOffset = 0;
  // UTF mode like Python str patterns; invalid UTF-8 in a subject is then a
  // non-match rather than an error.
  pcre2_code *code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errorCode, &errorOffset, nullptr);
  if (!code) {
    PCRE2_UCHAR buffer[256];
    int n = pcre2_get_error_message(errorCode, buffer, sizeof(buffer));
    std::string text = n < 0 ? "unknown PCRE2 error"
                             : std::string(reinterpret_cast<char *>(buffer));
    return text + " at offset " + std::to_string(errorOffset);
  }
  return std::shared_ptr<const NameRegex>(new NameRegex(code));
}

NameRegex::~NameRegex() { pcre2_code_free(static_cast<pcre2_code *>(code)); }

bool NameRegex::search(std::string_view text) const {
  auto *re = static_cast<pcre2_code *>(code);
  pcre2_match_data *data = pcre2_match_data_create_from_pattern(re, nullptr);
  if (!data)
    return false;
  // PCRE2 10.42 rejects a null subject even when empty.
  const char *subject = text.data() ? text.data() : "";
  // No anchoring options: an unanchored search, like re.search.
  int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject), text.size(),
                       0, 0, data, nullptr);
  pcre2_match_data_free(data);
  return rc >= 0;
}

std::variant<bool, std::string> kt::rules::regexSearch(std::string_view pattern,
                                                       std::string_view text) {
  auto compiled = NameRegex::compile(pattern);
  if (auto *err = std::get_if<std::string>(&compiled))
    return *err;
  return std::get<0>(compiled)->search(text);
}

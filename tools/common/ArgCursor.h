//===- ArgCursor.h - command-line options one at a time --------*- C++ -*-===//
//
// The option syntax kt-run and kt-quant share: "--name value" or
// "--name=value", flags without a value. Errors are returned as messages
// naming the option.
//
//===----------------------------------------------------------------------===//

#ifndef KT_TOOLS_COMMON_ARGCURSOR_H
#define KT_TOOLS_COMMON_ARGCURSOR_H

#include <optional>
#include <string>

namespace kttools {

class ArgCursor {
public:
  ArgCursor(int argc, char **argv) : argc_(argc), argv_(argv) {}

  /// Moves to the next argument; false after the last.
  bool next() {
    if (++i_ >= argc_)
      return false;
    name_ = argv_[i_];
    hasInline_ = false;
    if (auto eq = name_.find('=');
        name_.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_ = name_.substr(eq + 1);
      name_ = name_.substr(0, eq);
      hasInline_ = true;
    }
    return true;
  }
  /// The option's name (without "=value").
  const std::string &name() const { return name_; }
  bool hasInlineValue() const { return hasInline_; }

  /// A flag: sets b, refuses "--flag=value".
  std::optional<std::string> flag(bool &b) {
    if (hasInline_)
      return name_ + " takes no value";
    b = true;
    return std::nullopt;
  }
  /// The option's value: after '=' or the next argument.
  std::optional<std::string> value(std::string &out) {
    if (hasInline_) {
      out = inline_;
      return std::nullopt;
    }
    if (i_ + 1 >= argc_)
      return name_ + " needs a value";
    out = argv_[++i_];
    return std::nullopt;
  }

private:
  int argc_;
  char **argv_;
  int i_ = 0;
  std::string name_, inline_;
  bool hasInline_ = false;
};

} // namespace kttools

#endif // KT_TOOLS_COMMON_ARGCURSOR_H

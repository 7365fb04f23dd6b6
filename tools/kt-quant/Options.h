//===- Options.h - kt-quant command line -----------------------*- C++ -*-===//

#ifndef KT_TOOLS_KTQUANT_OPTIONS_H
#define KT_TOOLS_KTQUANT_OPTIONS_H

#include "kt/Runtime/Kernels/Moe.h"

#include <optional>
#include <string>

namespace ktquant {

struct QuantOptions {
  std::string model, rules, out;
  kt::kernels::QuantConfig config; ///< format, INT4 group and symmetry
  int threads = 0;                 ///< 0: one per core
  bool quiet = false;
};

/// Parses argv. On error returns a message (to print after "kt-quant: ");
/// sets `help` for --help.
std::optional<std::string> parseOptions(int argc, char **argv,
                                        QuantOptions &opts, bool &help);
extern const char *kUsage;

} // namespace ktquant

#endif
